"""The simulated day's data: the messages, the ground truth per ticket visit, and hall time
(seconds after local midnight) as epoch seconds and contract timestamps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any, Literal

from hallwatch.sensors.profiles import Profile

CST = timezone(timedelta(hours=8))  # Asia/Shanghai has had no DST since 1991
PRIORITY_RANK: dict[str, int] = {"green": 0, "appointment": 1, "normal": 2}
Outcome = Literal["completed", "no_show", "cancelled", "open"]

TICKET_MACHINE = "tm-01"
DISPLAY = "disp-01"
FRONT_DESK = "desk-01"  # complaints are typed in at the desk; it is not a heartbeating device


@dataclass(frozen=True)
class SimMessage:
    """One MQTT message: `at` is event time in epoch seconds, equal to the payload's `ts`."""

    at: float
    topic: str
    payload: dict[str, Any]
    retain: bool = False  # device status is retained, as the contract asks


@dataclass(frozen=True)
class TicketTruth:
    """What really happened to one queue visit of a ticket.

    A transferred ticket has two visits with the same `ticket`: `leg` 0 from the machine, and
    `leg` 1 from the transfer, whose `issued_at` is when it re-entered the queue. `abandoned` means
    the customer left before being called: `cancelled` at the machine, or silently, which ends in
    `no_show` when the ticket is called anyway. `left_at` is when they gave up.
    """

    hall: str
    ticket: str
    service: str
    priority: str
    issued_at: float
    called_at: float | None
    window: str | None
    outcome: Outcome
    abandoned: bool
    completed_at: float | None = None
    left_at: float | None = None
    leg: int = 0


@dataclass(frozen=True)
class Day:
    profile: Profile
    seed: int
    root: str
    messages: list[SimMessage]
    truth: list[TicketTruth]


def ts_text(at: float) -> str:
    return datetime.fromtimestamp(at, CST).isoformat(timespec="milliseconds")


def epoch(profile: Profile, seconds_after_midnight: float) -> float:
    """Epoch seconds of a clock time on the profile's date in +08:00."""
    midnight = datetime.combine(profile.date, time(0), tzinfo=CST).timestamp()
    return round(midnight + seconds_after_midnight, 3)
