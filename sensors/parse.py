"""Parse MQTT topic + payload into a typed event, or a rejection with a reason.

The wire contract is ../shared/contract.md. Decoding goes through msgspec structs (one per
payload kind) so the hot path is a single C-level decode; rules msgspec cannot express
(identifier patterns, id length, timestamp format) are checked afterwards by hand.
"""

from __future__ import annotations

import re
from datetime import datetime
from sys import intern
from typing import cast

import msgspec
from hallwatch.sensors.events import (
    Channel,
    ComplaintEvent,
    DeviceEvent,
    DeviceKind,
    DeviceState,
    DoorEvent,
    Event,
    Priority,
    Reason,
    Rejection,
    Severity,
    SystemEvent,
    SystemState,
    TicketEvent,
    WindowEvent,
    WindowState,
)

MAX_PAYLOAD = 64 * 1024
MAX_ID = 128
MAX_TICKET = 32
MAX_NAME = 64
MAX_TEXT = 2000
MAX_SERVICES = 64  # names in one window's `services`
MAX_COUNT = 10**9  # door totals (and integer ticket numbers): 0..10^9
IDENT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Characters no identifier, ticket number or name may hold, and that free text loses: controls
# (C0, DEL, C1: NUL, ESC, ...), Unicode format characters (bidi embeddings, overrides and
# isolates, LRM/RLM/ALM, zero-width ones, BOM, tags), line and paragraph separators, surrogates.
# They would reach metric labels, logs, WeCom messages and SMS, and could make one name look
# like another.
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891"
    "\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff"
    "\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
_SPACES = re.compile(r"[\t\n\r\x0b\x0c\x85\u2028\u2029]")

INPUT_KINDS = ("ticket", "window", "door", "device", "system", "complaint")

Stamp = str | int


class _Base(msgspec.Struct):
    id: str
    ts: Stamp


class _TicketBase(_Base, tag_field="type"):
    ticket: str | int


class _Issued(_TicketBase, tag="issued"):
    service: str
    priority: Priority = "normal"


class _Called(_TicketBase, tag="called"):
    window: str


class _Completed(_TicketBase, tag="completed"):
    window: str


class _NoShow(_TicketBase, tag="no_show"):
    window: str


class _Cancelled(_TicketBase, tag="cancelled"):
    pass


class _Transferred(_TicketBase, tag="transferred"):
    service: str


_TicketWire = _Issued | _Called | _Completed | _NoShow | _Cancelled | _Transferred


class _Window(_Base):
    state: WindowState
    services: list[str]
    emergency: bool = False


class _Door(_Base):
    in_total: int
    out_total: int


class _Device(_Base):
    state: DeviceState
    kind: DeviceKind


class _System(_Base):
    state: SystemState
    detail: str | None = None


class _Complaint(_Base):
    complaint_id: str
    channel: Channel
    severity: Severity
    summary: str
    received_by: str
    phone: str | None = None


_DECODERS: dict[str, msgspec.json.Decoder[object]] = {
    "ticket": msgspec.json.Decoder(_TicketWire),  # type: ignore[arg-type]
    "window": msgspec.json.Decoder(_Window),
    "door": msgspec.json.Decoder(_Door),
    "device": msgspec.json.Decoder(_Device),
    "system": msgspec.json.Decoder(_System),
    "complaint": msgspec.json.Decoder(_Complaint),
}

_TICKET_TYPE = {
    _Issued: "issued",
    _Called: "called",
    _Completed: "completed",
    _NoShow: "no_show",
    _Cancelled: "cancelled",
    _Transferred: "transferred",
}


class _Invalid(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def split_topic(topic: str, root: str) -> tuple[str, str, str | None]:
    """Return (hall, kind, sub-id) of an input topic, or raise `_Invalid`."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != root:
        raise _Invalid(Reason.UNKNOWN_TOPIC, f"not under {root}/{{hall}}/...")
    hall, kind = parts[1], parts[2]
    if kind not in INPUT_KINDS:
        raise _Invalid(Reason.UNKNOWN_TOPIC, f"unknown topic kind {kind[:32]!r}")
    with_id = kind in ("window", "door", "device", "system")
    if len(parts) != (4 if with_id else 3):
        raise _Invalid(Reason.UNKNOWN_TOPIC, f"wrong number of topic levels for {kind}")
    if not IDENT.fullmatch(hall):
        raise _Invalid(Reason.BAD_TOPIC_ID, "hall is not [A-Za-z0-9_.-]{1,64}")
    sub = parts[3] if with_id else None
    if sub is not None and not IDENT.fullmatch(sub):
        raise _Invalid(Reason.BAD_TOPIC_ID, f"{kind} is not [A-Za-z0-9_.-]{{1,64}}")
    return hall, kind, sub


def parse_ts(value: Stamp) -> float:
    """Event time in epoch seconds from RFC 3339 with offset, or integer epoch milliseconds."""
    if isinstance(value, int):
        if not 0 <= value < 10**14:
            raise _Invalid(Reason.BAD_TS, "epoch milliseconds out of range")
        return value / 1000.0
    if len(value) > 40:
        raise _Invalid(Reason.BAD_TS, "timestamp too long")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(Reason.BAD_TS, "ts is not RFC 3339") from None
    if parsed.tzinfo is None:
        raise _Invalid(Reason.BAD_TS, "ts has no UTC offset")
    seconds = parsed.timestamp()
    # The same range as epoch milliseconds: years 1 or 9999 would break local-date arithmetic.
    if not 0 <= seconds < 10**11:
        raise _Invalid(Reason.BAD_TS, "ts out of range")
    return seconds


def _text(value: str, field: str, limit: int) -> str:
    """A name or identifier: 1-`limit` characters, none of them `UNSAFE`."""
    if not value or len(value) > limit:
        raise _Invalid(Reason.BAD_VALUE, f"{field} must be 1-{limit} characters")
    if UNSAFE.search(value):
        raise _Invalid(Reason.BAD_VALUE, f"{field} holds control or bidi characters")
    return value


def clean_text(value: str) -> str:
    """Free text (a complaint's summary, a system's detail): line breaks and tabs become spaces,
    other `UNSAFE` characters are dropped. Shown to staff, it keeps what can be read."""
    return UNSAFE.sub("", _SPACES.sub(" ", value)).strip()


def _count(value: int, field: str) -> int:
    if not 0 <= value <= MAX_COUNT:
        raise _Invalid(Reason.BAD_VALUE, f"{field} must be 0-{MAX_COUNT}")
    return value


def _ident(value: str, field: str) -> str:
    if not IDENT.fullmatch(value):
        raise _Invalid(Reason.BAD_VALUE, f"{field} is not [A-Za-z0-9_.-]{{1,64}}")
    return value


def _classify(err: msgspec.ValidationError) -> _Invalid:
    msg = str(err)
    if "missing required field" in msg:
        return _Invalid(Reason.MISSING_FIELD, msg)
    if msg.startswith("Invalid value") and "$.type" in msg:
        return _Invalid(Reason.UNKNOWN_TYPE, msg)
    if msg.startswith("Expected `object`") and " - at " not in msg:
        return _Invalid(Reason.NOT_OBJECT, msg)
    if msg.startswith("Expected"):
        return _Invalid(Reason.WRONG_TYPE, msg)
    return _Invalid(Reason.BAD_VALUE, msg)


def _build(hall: str, kind: str, sub: str | None, wire: object) -> Event:
    assert isinstance(wire, _Base)
    if not 1 <= len(wire.id) <= MAX_ID:
        raise _Invalid(Reason.BAD_ID, f"id must be 1-{MAX_ID} characters")
    if UNSAFE.search(wire.id):
        raise _Invalid(Reason.BAD_ID, "id holds control or bidi characters")
    ts = parse_ts(wire.ts)
    if isinstance(wire, _TicketBase):
        number = wire.ticket
        if isinstance(number, int):
            number = str(_count(number, "ticket"))  # str() of a huge int would raise
        ticket = _text(number, "ticket", MAX_TICKET)
        kind_name = _TICKET_TYPE[type(wire)]
        service = getattr(wire, "service", None)
        window = getattr(wire, "window", None)
        return TicketEvent(
            hall=hall,
            id=wire.id,
            ts=ts,
            type=kind_name,  # type: ignore[arg-type]
            ticket=ticket,
            # Interned: a day's tickets share one copy of each name (the state held 150,000
            # tickets at 500 halls, four strings each: 35 MB of copies of a few words).
            service=None if service is None else intern(_text(service, "service", MAX_NAME)),
            priority=cast(Priority, intern(getattr(wire, "priority", "normal"))),
            window=None if window is None else intern(_ident(window, "window")),
        )
    assert sub is not None or isinstance(wire, _Complaint)
    if isinstance(wire, _Window):
        if len(wire.services) > MAX_SERVICES:
            raise _Invalid(Reason.BAD_VALUE, f"services: at most {MAX_SERVICES} names")
        services = tuple(dict.fromkeys(_text(s, "services[]", MAX_NAME) for s in wire.services))
        return WindowEvent(hall, wire.id, ts, str(sub), wire.state, services, wire.emergency)
    if isinstance(wire, _Door):
        in_total = _count(wire.in_total, "in_total")
        out_total = _count(wire.out_total, "out_total")
        return DoorEvent(hall, wire.id, ts, str(sub), in_total, out_total)
    if isinstance(wire, _Device):
        return DeviceEvent(hall, wire.id, ts, str(sub), wire.state, wire.kind)
    if isinstance(wire, _System):
        detail = None if wire.detail is None else clean_text(wire.detail[:MAX_TEXT]) or None
        return SystemEvent(hall, wire.id, ts, str(sub), wire.state, detail)
    assert isinstance(wire, _Complaint)
    return ComplaintEvent(
        hall=hall,
        id=wire.id,
        ts=ts,
        complaint_id=_text(wire.complaint_id, "complaint_id", MAX_ID),
        channel=wire.channel,
        severity=wire.severity,
        summary=_text(clean_text(wire.summary[: MAX_TEXT * 2]), "summary", MAX_TEXT),
        received_by=_text(wire.received_by, "received_by", MAX_NAME),
        phone=None if wire.phone is None else _text(wire.phone, "phone", 32),
    )


def parse(topic: str, payload: bytes, root: str = "hall") -> Event | Rejection:
    """Validate one MQTT message against the contract. Never raises on bad input."""
    hall: str | None = None
    try:
        if len(payload) > MAX_PAYLOAD:
            raise _Invalid(
                Reason.TOO_LARGE, f"payload is {len(payload)} bytes, limit {MAX_PAYLOAD}"
            )
        hall, kind, sub = split_topic(topic, root)
        try:
            wire = _DECODERS[kind].decode(payload)
        except msgspec.ValidationError as err:
            raise _classify(err) from None
        except (msgspec.DecodeError, UnicodeDecodeError) as err:
            # msgspec reports invalid UTF-8 inside a JSON string as UnicodeDecodeError.
            raise _Invalid(Reason.BAD_JSON, str(err)) from None
        return _build(hall, kind, sub, wire)
    except _Invalid as bad:
        return Rejection(bad.reason, bad.detail, topic[:256], hall)
