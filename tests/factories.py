"""Small builders of events and wire payloads shared by the unit tests (no mocks: real types)."""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hallwatch.sensors.events import (
    ComplaintEvent,
    DeviceEvent,
    DoorEvent,
    SystemEvent,
    TicketEvent,
    WindowEvent,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
_ids = itertools.count(1)


def at(local: str, tz: ZoneInfo = SHANGHAI) -> float:
    """Epoch seconds of a wall-clock time in the hall's zone, e.g. at("2026-11-26T09:00")."""
    return datetime.fromisoformat(local).replace(tzinfo=tz).timestamp()


def next_id(prefix: str = "ev") -> str:
    return f"{prefix}:{next(_ids):06d}"


def issued(
    ticket: str, ts: float, service: str = "gjj", priority: str = "normal", hall: str = "h1"
) -> TicketEvent:
    return TicketEvent(hall, next_id(), ts, "issued", ticket, service, priority)  # type: ignore[arg-type]


def ticket_ev(
    kind: str,
    ticket: str,
    ts: float,
    window: str | None = None,
    service: str | None = None,
    hall: str = "h1",
) -> TicketEvent:
    return TicketEvent(hall, next_id(), ts, kind, ticket, service, "normal", window)  # type: ignore[arg-type]


def window_ev(
    window: str,
    state: str,
    ts: float,
    services: tuple[str, ...] = ("gjj",),
    emergency: bool = False,
    hall: str = "h1",
) -> WindowEvent:
    return WindowEvent(hall, next_id(), ts, window, state, services, emergency)  # type: ignore[arg-type]


def door_ev(door: str, in_total: int, out_total: int, ts: float, hall: str = "h1") -> DoorEvent:
    return DoorEvent(hall, next_id(), ts, door, in_total, out_total)


def device_ev(
    device: str, state: str, ts: float, kind: str = "ticket_machine", hall: str = "h1"
) -> DeviceEvent:
    return DeviceEvent(hall, next_id(), ts, device, state, kind)  # type: ignore[arg-type]


def system_ev(
    system: str, state: str, ts: float, detail: str | None = None, hall: str = "h1"
) -> SystemEvent:
    return SystemEvent(hall, next_id(), ts, system, state, detail)  # type: ignore[arg-type]


def complaint_ev(
    complaint_id: str, ts: float, severity: str = "normal", hall: str = "h1"
) -> ComplaintEvent:
    return ComplaintEvent(hall, next_id(), ts, complaint_id, "visit", severity, "s", "staff1")  # type: ignore[arg-type]


def payload(**fields: Any) -> bytes:
    """A wire payload: JSON of the given fields."""
    return json.dumps(fields, ensure_ascii=False).encode()
