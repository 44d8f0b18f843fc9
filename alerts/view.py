"""What the rule engine reads and what it says: plain frozen data, no behaviour.

`HallView` is built by the daemon from its hall state and the estimator; `Transition` is what
the engine returns for every change of an alert (and every repeat while unacknowledged).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import get_args

from hallwatch.sensors.events import DeviceKind

# The alert names (ALERTS) and what a role may receive (KINDS): hallwatch.daemon.config.alerts.
# "relapsed": a crossing soon after an episode cleared reopens it (same alert id), see rules.
STATES = ("firing", "escalated", "repeat", "relapsed", "resolved")
DEVICE_KINDS: tuple[str, ...] = get_args(DeviceKind)


@dataclass(frozen=True, slots=True)
class DeviceView:
    """A device as the daemon sees it now: `up` from heartbeats, `since` when that began."""

    device: str
    kind: str
    up: bool
    since: float


@dataclass(frozen=True, slots=True)
class HallView:
    """One hall at one instant, the rule engine's only input. Times are epoch seconds."""

    hall: str
    now: float
    headcount: int
    # The forecast: what a normal ticket taken now would wait (None: no open window serves it).
    est_wait_s_by_service: Mapping[str, float | None] = field(default_factory=dict)
    waiting_by_service: Mapping[str, int] = field(default_factory=dict)
    # Endured: how long the longest-waiting ticket still in the queue has waited, per service.
    endured_s_by_service: Mapping[str, float] = field(default_factory=dict)
    # Services with customers waiting and no open window serving them, and since when.
    uncovered_since: Mapping[str, float] = field(default_factory=dict)
    windows_open: int = 0
    emergency_windows_open: int = 0
    extra_windows_by_service: Mapping[str, int] = field(default_factory=dict)
    # Seconds past closing time the present queue needs to clear; None or <= 0: it clears in time.
    closing_overrun_s: float | None = None
    # Windows the hall has that are not open now (what the advice is bounded by; None: unknown),
    # and the overrun past closing even with all of them open (> 0: extend hours, appointments).
    spare_windows: int | None = None
    all_open_overrun_s: float | None = None
    devices: tuple[DeviceView, ...] = ()
    # system -> (state "up" | "degraded" | "down", since)
    systems: Mapping[str, tuple[str, float]] = field(default_factory=dict)
    is_working_day: bool = True
    # The newest event time of the hall this view reflects (its state's clock; None: unknown).
    # Two instances agree on it where their wall-clock ticks do not: one that is behind on its
    # backlog looks at an earlier event time (alerts/claims.py `episode_start`).
    last_event_at: float | None = None


@dataclass(frozen=True, slots=True)
class Crossing:
    """One threshold a figure crossed: `metric` is "headcount", "wait" (the forecast for a new
    ticket) or "endured" (the longest wait of anyone still waiting); the last two name `service`."""

    metric: str
    value: float
    threshold: float
    service: str | None = None


@dataclass(frozen=True, slots=True)
class Figures:
    """The numbers a message quotes, taken from the view at the transition."""

    headcount: int = 0
    max_wait_s: float | None = None
    max_wait_service: str | None = None
    max_endured_s: float | None = None
    max_endured_service: str | None = None
    waiting_total: int = 0
    windows_open: int = 0
    emergency_windows_open: int = 0
    extra_windows_by_service: tuple[tuple[str, int], ...] = ()
    closing_overrun_s: float | None = None
    spare_windows: int | None = None
    all_open_overrun_s: float | None = None
    unreliable: tuple[str, ...] = ()  # "headcount" and/or "wait": a device they depend on is down
    crossed: tuple[Crossing, ...] = ()
    device_kind: str | None = None
    system_state: str | None = None
    # queue_peak: the information systems down during the episode; the queue grows because
    # of the stoppage, not because staff are slow, and the message says so.
    caused_by_outage: tuple[str, ...] = ()
    # service_uncovered: its service's queue, how long nobody has served it, the longest wait.
    service_waiting: int = 0
    uncovered_s: float = 0.0
    service_endured_s: float | None = None
    # service_uncovered in a slot of the hall's lunch rotation ([hours]): the slots under way,
    # e.g. "w1 11:30–12:30"; the action then names the rotation (午间轮班).
    lunch: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of one alert, or a repeat. `ordinal` tells transitions of one state within an
    episode apart from what every instance agrees on, not from what this one happened to see:
    firing 1, a repeat its slot on the repeat grid, an escalation its level, a resolution 1 +
    the relapses before it, a relapse its number (the engine counts relapses; with a shared
    outbox the service takes the count of the shared episode record instead, alerts/claims.py).
    The notification keys are `{alert_id}/{ordinal}-{state}/...` (alerts/service.py `route`)."""

    at: float
    hall: str
    alert: str
    subject: str  # the device, system or service (service_uncovered), "" for queue_peak
    alert_id: str
    state: str  # firing | escalated | repeat | relapsed | resolved
    level: int
    recipients: tuple[str, ...]  # role names, e.g. ("supervisor", "director")
    summary: str
    started_at: float
    ordinal: int
    figures: Figures
    peak: Figures | None = None  # on resolved: the worst figures of the episode
    reason: str = ""  # on resolved: "cleared" | "closed" (opening hours ended) | "gone"
    local_time: str = ""  # HH:MM in the hall's time zone, for messages
    event_at: float | None = None  # the view's last_event_at: how far in event time it was
