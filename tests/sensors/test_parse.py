"""Tests of sensors.parse: the wire contract, accepted and rejected."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hallwatch.sensors.events import (
    ComplaintEvent,
    DeviceEvent,
    DoorEvent,
    Reason,
    Rejection,
    SystemEvent,
    TicketEvent,
    WindowEvent,
)
from hallwatch.sensors.parse import MAX_PAYLOAD, parse
from hypothesis import given, settings
from hypothesis import strategies as st

TS = "2026-11-26T09:01:02.5+08:00"
TS_EPOCH = 1795654862.5  # the same instant


def enc(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def base(**extra: Any) -> dict[str, Any]:
    return {"id": "tm-01:000123", "ts": TS, **extra}


def rejected(topic: str, body: bytes, root: str = "hall") -> Rejection:
    result = parse(topic, body, root)
    assert isinstance(result, Rejection), result
    return result


# --- accepted events ---------------------------------------------------------------------------

TICKET_CASES = [
    (
        {"type": "issued", "ticket": "A001", "service": "提取", "priority": "green"},
        {"service": "提取", "priority": "green", "window": None},
    ),
    (
        {"type": "issued", "ticket": "A002", "service": "loan"},
        {"service": "loan", "priority": "normal", "window": None},
    ),
    (
        {"type": "issued", "ticket": "A003", "service": "loan", "priority": "appointment"},
        {"service": "loan", "priority": "appointment"},
    ),
    ({"type": "called", "ticket": "A001", "window": "w1"}, {"window": "w1", "service": None}),
    ({"type": "completed", "ticket": "A001", "window": "w1"}, {"window": "w1"}),
    ({"type": "no_show", "ticket": "A001", "window": "w2"}, {"window": "w2"}),
    ({"type": "cancelled", "ticket": "A001"}, {"window": None, "service": None}),
    ({"type": "transferred", "ticket": "A001", "service": "loan"}, {"service": "loan"}),
]


@pytest.mark.parametrize(("fields", "expect"), TICKET_CASES)
def test_ticket_types_parse(fields: dict[str, Any], expect: dict[str, Any]) -> None:
    """Every ticket `type` of the contract parses into a TicketEvent with its fields."""
    ev = parse("hall/h1/ticket", enc(base(**fields)))
    assert isinstance(ev, TicketEvent)
    assert (ev.hall, ev.id, ev.ts, ev.type, ev.ticket) == (
        "h1",
        "tm-01:000123",
        TS_EPOCH,
        fields["type"],
        fields["ticket"],
    )
    for name, value in expect.items():
        assert getattr(ev, name) == value


def test_every_ticket_type_is_covered() -> None:
    """The parametrised cases above cover every ticket type the contract names."""
    covered = {f["type"] for f, _ in TICKET_CASES}
    assert covered == {"issued", "called", "completed", "no_show", "cancelled", "transferred"}


def test_integer_ticket_number_becomes_text() -> None:
    """A ticket number sent as a JSON integer is kept as its decimal text."""
    ev = parse("hall/h1/ticket", enc(base(type="cancelled", ticket=42)))
    assert isinstance(ev, TicketEvent) and ev.ticket == "42"


def test_window_event() -> None:
    """A window topic yields the window id from the topic, its state, services and flag."""
    body = enc(base(state="open", services=["提取", "loan"], emergency=True))
    ev = parse("hall/h1/window/w-07", body)
    assert ev == WindowEvent("h1", "tm-01:000123", TS_EPOCH, "w-07", "open", ("提取", "loan"), True)


def test_window_emergency_defaults_false() -> None:
    """`emergency` is optional and false when absent."""
    ev = parse("hall/h1/window/w1", enc(base(state="paused", services=[])))
    assert isinstance(ev, WindowEvent) and ev.emergency is False and ev.state == "paused"


def test_door_event() -> None:
    """A door topic yields the door id and both totals."""
    ev = parse("hall/h1/door/east", enc(base(in_total=120, out_total=99)))
    assert ev == DoorEvent("h1", "tm-01:000123", TS_EPOCH, "east", 120, 99)


def test_device_event() -> None:
    """A device topic yields the device id, its state and kind."""
    ev = parse("hall/h1/device/tm-01", enc(base(state="offline", kind="ticket_machine")))
    assert ev == DeviceEvent("h1", "tm-01:000123", TS_EPOCH, "tm-01", "offline", "ticket_machine")


def test_system_event_with_and_without_detail() -> None:
    """A system topic yields its state; `detail` is optional."""
    ev = parse("hall/h1/system/core", enc(base(state="degraded", detail="slow")))
    assert ev == SystemEvent("h1", "tm-01:000123", TS_EPOCH, "core", "degraded", "slow")
    ev2 = parse("hall/h1/system/core", enc(base(state="up")))
    assert isinstance(ev2, SystemEvent) and ev2.detail is None


def test_complaint_event() -> None:
    """A complaint yields every contract field, the phone included."""
    body = enc(
        base(
            complaint_id="c-1",
            channel="phone",
            severity="serious",
            summary="排队太久",
            received_by="staff7",
            phone="13800000000",
        )
    )
    ev = parse("hall/h1/complaint", body)
    assert ev == ComplaintEvent(
        "h1",
        "tm-01:000123",
        TS_EPOCH,
        "c-1",
        "phone",
        "serious",
        "排队太久",
        "staff7",
        "13800000000",
    )


def test_custom_root() -> None:
    """The topic root is configurable; the default root is then an unknown topic."""
    body = enc(base(type="cancelled", ticket="A1"))
    assert isinstance(parse("hq/h1/ticket", body, root="hq"), TicketEvent)
    assert rejected("hall/h1/ticket", body, root="hq").reason is Reason.UNKNOWN_TOPIC


def test_rfc3339_and_epoch_ms_give_the_same_time() -> None:
    """ts as RFC 3339 with offset, in UTC, and as integer epoch ms give the same float."""
    times = []
    for ts in (TS, "2026-11-26T01:01:02.5Z", "2026-11-26T01:01:02.500+00:00", 1795654862500):
        ev = parse("hall/h1/ticket", enc({"id": "a", "ts": ts, "type": "cancelled", "ticket": "1"}))
        assert isinstance(ev, TicketEvent)
        times.append(ev.ts)
    assert times == [TS_EPOCH] * 4


def test_unknown_extra_fields_are_ignored() -> None:
    """Unknown fields, even nested objects, do not change or reject the event."""
    plain = parse("hall/h1/door/d1", enc(base(in_total=1, out_total=0)))
    extra = parse(
        "hall/h1/door/d1", enc(base(in_total=1, out_total=0, firmware="2.1", x={"y": [1]}))
    )
    assert isinstance(plain, DoorEvent) and extra == plain


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


# --- never raises ------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
_field_names = st.sampled_from(
    [
        "id",
        "ts",
        "type",
        "ticket",
        "service",
        "priority",
        "window",
        "state",
        "services",
        "emergency",
        "in_total",
        "out_total",
        "kind",
        "detail",
        "complaint_id",
        "channel",
        "severity",
        "summary",
        "received_by",
        "phone",
    ]
)
_topics = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda root, hall, kind, sub: "/".join(p for p in (root, hall, kind, sub) if p is not None),
        st.sampled_from(["hall", "x", ""]),
        st.sampled_from(["h1", "", "h 1", "h/1"]) | st.text(max_size=5),
        st.sampled_from(["ticket", "window", "door", "device", "system", "complaint", "status"]),
        st.none() | st.sampled_from(["w1", "", "a b"]) | st.text(max_size=5),
    ),
)


@settings(max_examples=300, deadline=None)
@given(topic=_topics, body=st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(topic: str, body: bytes) -> None:
    """Any topic and any bytes give an Event or a Rejection, never an exception."""
    result = parse(topic, body)
    assert isinstance(
        result,
        TicketEvent
        | WindowEvent
        | DoorEvent
        | DeviceEvent
        | SystemEvent
        | ComplaintEvent
        | Rejection,
    )


@settings(max_examples=400, deadline=None)
@given(
    topic=_topics,
    obj=st.dictionaries(_field_names, _json_values, max_size=10)
    | st.fixed_dictionaries(
        {"id": st.text(max_size=130), "ts": st.integers() | st.text(max_size=40)},
        optional={"type": st.text(max_size=12), "ticket": _json_values},
    ),
)
def test_arbitrary_json_never_raises(topic: str, obj: dict[str, Any]) -> None:
    """Near-miss JSON objects give an Event or a Rejection with a reason, never an exception."""
    result = parse(topic, enc(obj))
    if isinstance(result, Rejection):
        assert result.reason in set(Reason)
    else:
        assert result.hall == topic.split("/")[1]
        assert 0 <= result.ts < 10**11


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
