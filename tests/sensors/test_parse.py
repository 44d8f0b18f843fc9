"""Tests of sensors.parse: the wire contract accepted, and no input ever raising (rejections:
test_parse_rejects.py)."""

from __future__ import annotations

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
from hallwatch.sensors.parse import parse
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sensors.parse_helpers import TS, TS_EPOCH, base, enc, rejected

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
