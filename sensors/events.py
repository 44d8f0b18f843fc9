"""Typed, immutable events: what the hall's devices said, after validation.

Every event carries the hall it came from (taken from the topic), the device-assigned `id`
(the idempotency key within a hall) and `ts`, the event time in epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Priority = Literal["normal", "green", "appointment"]
TicketType = Literal["issued", "called", "completed", "no_show", "cancelled", "transferred"]
WindowState = Literal["open", "paused", "closed"]
DeviceState = Literal["online", "offline"]
DeviceKind = Literal["ticket_machine", "door_counter", "window_terminal", "display", "other"]
SystemState = Literal["up", "degraded", "down"]
Channel = Literal["visit", "phone", "letter", "online"]
Severity = Literal["normal", "serious"]

#: Calling order: a lower rank is called first (the contract's green > appointment > normal).
PRIORITY_RANK: dict[str, int] = {"green": 0, "appointment": 1, "normal": 2}


@dataclass(frozen=True, slots=True)
class TicketEvent:
    hall: str
    id: str
    ts: float
    type: TicketType
    ticket: str
    service: str | None = None
    priority: Priority = "normal"
    window: str | None = None


@dataclass(frozen=True, slots=True)
class WindowEvent:
    hall: str
    id: str
    ts: float
    window: str
    state: WindowState
    services: tuple[str, ...]
    emergency: bool = False


@dataclass(frozen=True, slots=True)
class DoorEvent:
    hall: str
    id: str
    ts: float
    door: str
    in_total: int
    out_total: int


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    hall: str
    id: str
    ts: float
    device: str
    state: DeviceState
    kind: DeviceKind


@dataclass(frozen=True, slots=True)
class SystemEvent:
    hall: str
    id: str
    ts: float
    system: str
    state: SystemState
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class ComplaintEvent:
    hall: str
    id: str
    ts: float
    complaint_id: str
    channel: Channel
    severity: Severity
    summary: str
    received_by: str
    phone: str | None = None


Event = TicketEvent | WindowEvent | DoorEvent | DeviceEvent | SystemEvent | ComplaintEvent


class Reason(StrEnum):
    """Why an input was rejected; the label of `hallwatch_events_rejected_total`."""

    TOO_LARGE = "too_large"
    BAD_JSON = "bad_json"
    NOT_OBJECT = "not_object"
    UNKNOWN_TOPIC = "unknown_topic"
    BAD_TOPIC_ID = "bad_topic_id"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_TYPE = "unknown_type"
    BAD_VALUE = "bad_value"
    BAD_ID = "bad_id"
    BAD_TS = "bad_ts"


@dataclass(frozen=True, slots=True)
class Rejection:
    """An input that is not a valid event, with the reason and a short human detail."""

    reason: Reason
    detail: str
    topic: str
    hall: str | None = None
