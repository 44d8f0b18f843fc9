"""Tests of sensors.parse: what the wire contract rejects, and values at and past their bounds."""

from __future__ import annotations

from typing import Any

import pytest
from hallwatch.sensors.events import (
    ComplaintEvent,
    DoorEvent,
    Reason,
    SystemEvent,
    TicketEvent,
    WindowEvent,
)
from hallwatch.sensors.parse import MAX_PAYLOAD, parse

from tests.sensors.parse_helpers import TS, base, enc, rejected

# --- rejections --------------------------------------------------------------------------------

REJECTIONS: list[tuple[str, str, bytes, Reason]] = [
    ("too large", "hall/h1/ticket", b" " * (MAX_PAYLOAD + 1), Reason.TOO_LARGE),
    ("truncated json", "hall/h1/ticket", b'{"id": "a"', Reason.BAD_JSON),
    ("not utf-8", "hall/h1/ticket", b"\xff\xfe{}", Reason.BAD_JSON),
    ("empty payload", "hall/h1/door/d1", b"", Reason.BAD_JSON),
    ("array", "hall/h1/ticket", b"[1, 2]", Reason.NOT_OBJECT),
    ("number", "hall/h1/door/d1", b"7", Reason.NOT_OBJECT),
    ("other root", "other/h1/ticket", enc(base()), Reason.UNKNOWN_TOPIC),
    ("our own output", "hall/h1/estimate", enc(base()), Reason.UNKNOWN_TOPIC),
    ("too short", "hall/h1", enc(base()), Reason.UNKNOWN_TOPIC),
    ("window without id", "hall/h1/window", enc(base()), Reason.UNKNOWN_TOPIC),
    ("ticket with sub-level", "hall/h1/ticket/x", enc(base()), Reason.UNKNOWN_TOPIC),
    ("space in hall", "hall/h 1/ticket", enc(base()), Reason.BAD_TOPIC_ID),
    ("empty hall", "hall//ticket", enc(base()), Reason.BAD_TOPIC_ID),
    ("long hall", "hall/" + "h" * 65 + "/ticket", enc(base()), Reason.BAD_TOPIC_ID),
    ("bad door id", "hall/h1/door/门", enc(base()), Reason.BAD_TOPIC_ID),
    ("empty window id", "hall/h1/window/", enc(base()), Reason.BAD_TOPIC_ID),
    (
        "no id",
        "hall/h1/ticket",
        enc({"ts": TS, "type": "cancelled", "ticket": "1"}),
        Reason.MISSING_FIELD,
    ),
    (
        "no ts",
        "hall/h1/ticket",
        enc({"id": "a", "type": "cancelled", "ticket": "1"}),
        Reason.MISSING_FIELD,
    ),
    ("no type", "hall/h1/ticket", enc(base(ticket="1")), Reason.MISSING_FIELD),
    (
        "issued without service",
        "hall/h1/ticket",
        enc(base(type="issued", ticket="1")),
        Reason.MISSING_FIELD,
    ),
    (
        "called without window",
        "hall/h1/ticket",
        enc(base(type="called", ticket="1")),
        Reason.MISSING_FIELD,
    ),
    ("door without out", "hall/h1/door/d1", enc(base(in_total=1)), Reason.MISSING_FIELD),
    (
        "id is a number",
        "hall/h1/ticket",
        enc({"id": 5, "ts": TS, "type": "cancelled", "ticket": "1"}),
        Reason.WRONG_TYPE,
    ),
    (
        "ts is a float",
        "hall/h1/ticket",
        enc({"id": "a", "ts": 1.5, "type": "cancelled", "ticket": "1"}),
        Reason.WRONG_TYPE,
    ),
    (
        "ts is a bool",
        "hall/h1/ticket",
        enc({"id": "a", "ts": True, "type": "cancelled", "ticket": "1"}),
        Reason.WRONG_TYPE,
    ),
    ("type is a number", "hall/h1/ticket", enc(base(type=3, ticket="1")), Reason.WRONG_TYPE),
    (
        "door total is a string",
        "hall/h1/door/d1",
        enc(base(in_total="3", out_total=0)),
        Reason.WRONG_TYPE,
    ),
    (
        "door total is a bool",
        "hall/h1/door/d1",
        enc(base(in_total=True, out_total=0)),
        Reason.WRONG_TYPE,
    ),
    (
        "services is a string",
        "hall/h1/window/w1",
        enc(base(state="open", services="loan")),
        Reason.WRONG_TYPE,
    ),
    (
        "emergency is a string",
        "hall/h1/window/w1",
        enc(base(state="open", services=[], emergency="yes")),
        Reason.WRONG_TYPE,
    ),
    (
        "unknown ticket type",
        "hall/h1/ticket",
        enc(base(type="vip", ticket="1")),
        Reason.UNKNOWN_TYPE,
    ),
    (
        "unknown priority",
        "hall/h1/ticket",
        enc(base(type="issued", ticket="1", service="s", priority="vip")),
        Reason.BAD_VALUE,
    ),
    (
        "unknown window state",
        "hall/h1/window/w1",
        enc(base(state="ajar", services=[])),
        Reason.BAD_VALUE,
    ),
    (
        "negative total",
        "hall/h1/door/d1",
        enc(base(in_total=-1, out_total=0)),
        Reason.BAD_VALUE,
    ),
    ("empty ticket", "hall/h1/ticket", enc(base(type="cancelled", ticket="")), Reason.BAD_VALUE),
    (
        "window not an identifier",
        "hall/h1/ticket",
        enc(base(type="called", ticket="1", window="w/1")),
        Reason.BAD_VALUE,
    ),
    (
        "unknown device kind",
        "hall/h1/device/x",
        enc(base(state="online", kind="toaster")),
        Reason.BAD_VALUE,
    ),
    (
        "unknown complaint channel",
        "hall/h1/complaint",
        enc(
            base(
                complaint_id="c",
                channel="fax",
                severity="normal",
                summary="s",
                received_by="x",
            )
        ),
        Reason.BAD_VALUE,
    ),
    (
        "empty id",
        "hall/h1/ticket",
        enc({"id": "", "ts": TS, "type": "cancelled", "ticket": "1"}),
        Reason.BAD_ID,
    ),
    (
        "id of 129 characters",
        "hall/h1/ticket",
        enc({"id": "x" * 129, "ts": TS, "type": "cancelled", "ticket": "1"}),
        Reason.BAD_ID,
    ),
    (
        "ts without offset",
        "hall/h1/ticket",
        enc({"id": "a", "ts": "2026-11-26T09:01:02", "type": "cancelled", "ticket": "1"}),
        Reason.BAD_TS,
    ),
    (
        "ts is a date only",
        "hall/h1/ticket",
        enc({"id": "a", "ts": "2026-11-26", "type": "cancelled", "ticket": "1"}),
        Reason.BAD_TS,
    ),
    (
        "ts is garbage",
        "hall/h1/ticket",
        enc({"id": "a", "ts": "yesterday at nine", "type": "cancelled", "ticket": "1"}),
        Reason.BAD_TS,
    ),
    (
        "negative epoch ms",
        "hall/h1/ticket",
        enc({"id": "a", "ts": -1, "type": "cancelled", "ticket": "1"}),
        Reason.BAD_TS,
    ),
    (
        "ts in year 1",
        "hall/h1/ticket",
        enc({"id": "a", "ts": "0001-01-01T00:00:00+14:00", "type": "cancelled", "ticket": "1"}),
        Reason.BAD_TS,
    ),
    (
        "ts in year 9999",
        "hall/h1/ticket",
        enc({"id": "a", "ts": "9999-12-31T23:59:59-14:00", "type": "cancelled", "ticket": "1"}),
        Reason.BAD_TS,
    ),
]


@pytest.mark.parametrize(
    ("topic", "body", "reason"),
    [case[1:] for case in REJECTIONS],
    ids=[case[0] for case in REJECTIONS],
)
def test_rejections(topic: str, body: bytes, reason: Reason) -> None:
    """Each invalid input is rejected with the reason the contract implies, never raised."""
    bad = rejected(topic, body)
    assert bad.reason is reason, bad.detail
    assert bad.detail
    assert bad.topic == topic


def test_every_reason_is_exercised() -> None:
    """The rejection table covers every member of `Reason`."""
    assert {case[3] for case in REJECTIONS} == set(Reason)


def test_id_of_128_characters_is_accepted() -> None:
    """The id limit is inclusive: 128 characters is still a valid id."""
    ev = parse(
        "hall/h1/ticket", enc({"id": "x" * 128, "ts": 0, "type": "cancelled", "ticket": "1"})
    )
    assert isinstance(ev, TicketEvent) and len(ev.id) == 128


def test_payload_at_the_limit_is_not_too_large() -> None:
    """A payload of exactly 64 KiB is decoded, not rejected for size."""
    body = enc(base(type="cancelled", ticket="1"))
    body = body[:-1] + b" " * (MAX_PAYLOAD - len(body)) + b"}"
    assert len(body) == MAX_PAYLOAD
    assert isinstance(parse("hall/h1/ticket", body), TicketEvent)


def test_rejection_names_the_hall_when_known() -> None:
    """A payload rejection carries the hall from the topic, a topic rejection does not."""
    assert rejected("hall/h9/ticket", b"[]").hall == "h9"
    assert rejected("nothall/h9/ticket", b"{}").hall is None


def test_long_topic_is_cut_in_the_rejection() -> None:
    """A rejection keeps at most 256 characters of a hostile topic."""
    bad = rejected("hall/" + "x" * 5000, b"{}")
    assert len(bad.topic) == 256


# --- bounded values ----------------------------------------------------------------------------

BOUNDS = [
    ("door total 10^400", "hall/h1/door/d1", base(in_total=10**400, out_total=0)),
    ("door total 2^63-1", "hall/h1/door/d1", base(in_total=0, out_total=2**63 - 1)),
    ("door total past 10^9", "hall/h1/door/d1", base(in_total=10**9 + 1, out_total=0)),
    ("negative ticket number", "hall/h1/ticket", base(type="cancelled", ticket=-3)),
    ("NUL in a ticket", "hall/h1/ticket", base(type="cancelled", ticket="A\x00B")),
    ("RLO in a service", "hall/h1/ticket", base(type="issued", ticket="A1", service="提\u202e取")),
    ("LRI in a window's services", "hall/h1/window/w1", base(state="open", services=["\u2066a"])),
    (
        "ESC in a complaint id",
        "hall/h1/complaint",
        base(
            complaint_id="c\x1b[31m",
            channel="visit",
            severity="normal",
            summary="s",
            received_by="a",
        ),
    ),
    (
        "RLM in received_by",
        "hall/h1/complaint",
        base(
            complaint_id="c1",
            channel="visit",
            severity="normal",
            summary="s",
            received_by="张\u200f三",
        ),
    ),
    (
        "C1 NEL in a phone",
        "hall/h1/complaint",
        base(
            complaint_id="c1",
            channel="visit",
            severity="normal",
            summary="s",
            received_by="a",
            phone="138\x85",
        ),
    ),
    ("65 services", "hall/h1/window/w1", base(state="open", services=[f"s{i}" for i in range(65)])),
    (
        "summary of controls only",
        "hall/h1/complaint",
        base(
            complaint_id="c1",
            channel="visit",
            severity="normal",
            summary="\x00\u202e\n",
            received_by="a",
        ),
    ),
]


@pytest.mark.parametrize(("topic", "body"), [c[1:] for c in BOUNDS], ids=[c[0] for c in BOUNDS])
def test_values_out_of_range_are_bad_values(topic: str, body: dict[str, Any]) -> None:
    """Numbers past their range and names holding control or bidi characters are rejected as
    bad_value (they reached /metrics as an overflow and SMS as "厅内9223372036854775807人")."""
    assert rejected(topic, enc(body)).reason is Reason.BAD_VALUE


def test_huge_integer_ticket_number_is_a_bad_value() -> None:
    """A ticket "number" of 5,000 digits is rejected, not raised (str() of it would raise)."""
    body = b'{"id": "a", "ts": 0, "type": "cancelled", "ticket": 1' + b"0" * 5000 + b"}"
    assert rejected("hall/h1/ticket", body).reason is Reason.BAD_VALUE


def test_event_id_with_control_characters_is_a_bad_id() -> None:
    """An id holding NUL or a bidi override is rejected as bad_id."""
    for eid in ("tm\x00", "tm\u202e1"):
        body = enc({"id": eid, "ts": 0, "type": "cancelled", "ticket": "1"})
        assert rejected("hall/h1/ticket", body).reason is Reason.BAD_ID


def test_values_at_their_bounds_are_accepted() -> None:
    """Door totals 0 and 10^9, 64 services (duplicates kept once) are still valid."""
    ev = parse("hall/h1/door/d1", enc(base(in_total=10**9, out_total=0)))
    assert isinstance(ev, DoorEvent) and ev.in_total == 10**9
    win = parse("hall/h1/window/w1", enc(base(state="open", services=["a"] * 64)))
    assert isinstance(win, WindowEvent) and win.services == ("a",)


def test_free_text_loses_control_and_bidi_characters() -> None:
    """A complaint's summary and a system's detail keep their words, without controls or bidi
    characters; line breaks become spaces."""
    body = base(
        complaint_id="c1",
        channel="visit",
        severity="normal",
        summary="等候\x00时间\u202e过长\n请处理",
        received_by="前台01",
    )
    ev = parse("hall/h1/complaint", enc(body))
    assert isinstance(ev, ComplaintEvent) and ev.summary == "等候时间过长 请处理"
    sys_ev = parse("hall/h1/system/core", enc(base(state="down", detail="\u2066timeout\u2069\x1b")))
    assert isinstance(sys_ev, SystemEvent) and sys_ev.detail == "timeout"
