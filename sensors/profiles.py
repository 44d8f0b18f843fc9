"""Named days for the hall simulator: every knob that shapes a simulated day.

A `Profile` is pure data. `sensors.simulator.simulate_day` turns it, with a seed, into the MQTT
messages the hall's devices would publish. Every field has a default taken from an ordinary day,
so a variant is one `dataclasses.replace(PROFILES["normal"], ...)` away.

Clock times are integer seconds after local midnight in Asia/Shanghai (+08:00, no DST), written
with `hm("12:00")` for readability.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass

#: Identifier rule from the wire contract for hall, window, door, device and system ids.
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def hm(text: str) -> int:
    """Seconds after local midnight for an "HH:MM" clock time."""
    hours, minutes = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60


@dataclass(frozen=True)
class ServiceSpec:
    """One business service and how long it takes at a window."""

    name: str  # service name as published on the wire, e.g. "提取"
    letter: str  # ticket number prefix: "A" gives "A001"
    share: float  # fraction of first tickets that ask for this service
    mean_s: float  # mean service time, called -> completed, in seconds
    sigma: float  # log-normal shape (sd of the log); 0.5 gives a coefficient of variation ~0.53


@dataclass(frozen=True)
class WindowSpec:
    """A regular counter, open all day except for its lunch turn."""

    window: str
    services: tuple[str, ...]
    # Pause interval (start, end) in seconds after midnight. Staff take lunch in turns, so each
    # window gets its own slice of 12:00-13:30 and the hall never shuts.
    lunch: tuple[int, int] | None = None


@dataclass(frozen=True)
class EmergencySpec:
    """The plan's extra window, staffed when the queue passes a threshold mid-peak."""

    window: str
    services: tuple[str, ...]
    open_at_waiting: int  # tickets waiting that make the hall call in extra staff
    close_at_waiting: int  # queue short enough to send them back
    staffing_delay_s: float  # time from the decision to the window actually opening
    min_open_s: float  # once staffed, the window stays at least this long
    active_from: int  # only between these clock times: the plan is about the peak
    active_until: int


@dataclass(frozen=True)
class Outage:
    """A device or information system that is unavailable for a while."""

    target: str  # device id (e.g. "dc-d2") or system id (e.g. "core")
    start: int  # seconds after midnight
    duration_s: int
    detail: str = ""  # published with a system outage


DEFAULT_SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("提取", "A", 0.50, 270.0, 0.5),  # withdrawal
    ServiceSpec("缴存", "B", 0.20, 240.0, 0.5),  # deposit
    ServiceSpec("贷款", "C", 0.15, 660.0, 0.5),  # loan
    ServiceSpec("转移", "D", 0.15, 330.0, 0.5),  # transfer of an account
)

#: Eight opening hours, 09-10 .. 16-17: morning peak at 10-11, lunch dip, afternoon peak at 15-16.
DEFAULT_HOURLY_WEIGHTS: tuple[float, ...] = (1.2, 1.5, 1.2, 0.6, 0.9, 1.3, 1.4, 0.9)

_W = "提取", "缴存", "贷款", "转移"
# Overlapping sets: withdrawals are everyone's work, loans need a specialist window.
DEFAULT_WINDOWS: tuple[WindowSpec, ...] = (
    WindowSpec("w01", (_W[0], _W[1]), (hm("12:00"), hm("12:45"))),
    WindowSpec("w02", (_W[0], _W[3], _W[2]), (hm("12:45"), hm("13:30"))),
    WindowSpec("w03", (_W[0], _W[1], _W[3]), (hm("12:00"), hm("12:45"))),
    WindowSpec("w04", (_W[2], _W[0]), (hm("12:45"), hm("13:30"))),
    WindowSpec("w05", (_W[2],)),
    WindowSpec("w06", (_W[1], _W[3], _W[0])),
)


@dataclass(frozen=True)
class Profile:
    """Everything that makes one simulated day; defaults are an ordinary Thursday."""

    name: str = "normal"
    hall: str = "h1"
    date: dt.date = dt.date(2026, 11, 26)
    open_at: int = hm("09:00")  # ticket machine starts issuing
    close_at: int = hm("17:00")  # no new tickets after this; the queue is still served
    power_on_lead_s: int = 900  # devices connect this long before opening (and stay after)

    # Arrivals: a non-homogeneous Poisson process whose rate in opening hour i is
    # expected_arrivals * hourly_weights[i] / sum(hourly_weights), per hour.
    expected_arrivals: float = 300.0
    hourly_weights: tuple[float, ...] = DEFAULT_HOURLY_WEIGHTS

    services: tuple[ServiceSpec, ...] = DEFAULT_SERVICES
    green_share: float = 0.05  # elderly, weak, sick, disabled: served before everyone
    appointment_share: float = 0.15  # booked: served before normal tickets

    # Patience is log-normal: most people wait, a long tail never gives up, a few leave early.
    patience_mean_s: float = 2700.0
    patience_sigma: float = 0.6
    # Of those who give up, the share who cancel at the machine; the rest just leave and are
    # called later, becoming no_show.
    cancel_share: float = 0.25
    no_show_wait_s: float = 60.0  # how long a window waits (and recalls) before no_show
    transfer_share: float = 0.03  # completed first visits sent on to another service
    call_gap_s: tuple[float, float] = (3.0, 15.0)  # idle between finishing and the next call

    windows: tuple[WindowSpec, ...] = DEFAULT_WINDOWS
    emergency: EmergencySpec | None = None

    doors: tuple[str, ...] = ("d1", "d2")
    door_weights: tuple[float, ...] = (0.6, 0.4)  # which door people use, in and out
    companion_share: float = 0.2  # customers who bring one companion (counted, no ticket)
    miss_rate: float = 0.03  # each crossing missed by the counter with this probability
    door_batch_s: float = 5.0  # counters publish totals at most this often, when changed
    counter_reset: tuple[str, int] | None = None  # (door, clock time) the counter restarts at 0

    heartbeat_s: float = 30.0
    device_outage: Outage | None = None  # a door counter or the display drops off the network
    systems: tuple[str, ...] = ("core",)
    system_outage: Outage | None = None
    # Staff fall back to paper during a system outage, so service takes longer.
    outage_service_factor: float = 1.5

    complaints: int = 2

    def __post_init__(self) -> None:
        _check_ids("hall", [self.hall])
        _check_ids("doors", self.doors)
        _check_ids("systems", self.systems)
        _check_ids("windows", [w.window for w in self.windows])
        self._check_hours()
        self._check_mix()
        self._check_windows()
        self._check_devices()

    def _check_hours(self) -> None:
        """Opening hours, and one arrival weight per opening hour."""
        if not 0 <= self.open_at < self.close_at <= 24 * 3600:
            raise ValueError(f"open_at/close_at: need 0 <= {self.open_at} < {self.close_at}")
        hours, rest = divmod(self.close_at - self.open_at, 3600)
        if rest or len(self.hourly_weights) != hours:
            raise ValueError(
                f"hourly_weights: need one weight per opening hour ({hours}), "
                f"got {len(self.hourly_weights)}"
            )
        if min(self.hourly_weights) < 0 or sum(self.hourly_weights) <= 0:
            raise ValueError(f"hourly_weights: bad weights {self.hourly_weights}")
        if self.expected_arrivals <= 0:
            raise ValueError(f"expected_arrivals: must be > 0, got {self.expected_arrivals}")

    def _check_mix(self) -> None:
        """The services' shares, letters and durations; the customer shares."""
        if abs(sum(s.share for s in self.services) - 1.0) > 1e-6:
            raise ValueError("services: shares must sum to 1")
        if len({s.letter for s in self.services}) != len(self.services):
            raise ValueError("services: ticket letters must be distinct")
        if any(s.mean_s <= 0 or s.sigma < 0 for s in self.services):
            raise ValueError("services: mean_s must be > 0 and sigma >= 0")
        for name in (
            "green_share",
            "appointment_share",
            "cancel_share",
            "transfer_share",
            "companion_share",
            "miss_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: must be within [0, 1], got {value}")
        if self.green_share + self.appointment_share > 1.0:
            raise ValueError("green_share + appointment_share: must not exceed 1")

    def _check_windows(self) -> None:
        """Every window serves known services, every service has a window; the emergency one."""
        served: set[str] = set()
        for w in self.windows:
            self._check_services(f"windows[{w.window}]", w.services)
            served.update(w.services)
            if w.lunch and not self.open_at < w.lunch[0] < w.lunch[1] < self.close_at:
                raise ValueError(f"windows[{w.window}].lunch: must lie inside opening hours")
        if missing := set(self.service_names) - served:
            raise ValueError(f"windows: no regular window serves {sorted(missing)}")
        if e := self.emergency:
            _check_ids("emergency.window", [e.window])
            self._check_services("emergency.services", e.services)
            if e.window in {w.window for w in self.windows}:
                raise ValueError(f"emergency.window: {e.window} is already a regular window")
            if e.close_at_waiting >= e.open_at_waiting:
                raise ValueError("emergency: close_at_waiting must be below open_at_waiting")

    def _check_devices(self) -> None:
        """Doors, counter reset and system outage name known devices; positive periods."""
        if len(self.door_weights) != len(self.doors):
            raise ValueError("door_weights: need one weight per door")
        if self.counter_reset and self.counter_reset[0] not in self.doors:
            raise ValueError(f"counter_reset: unknown door {self.counter_reset[0]}")
        if self.system_outage and self.system_outage.target not in self.systems:
            raise ValueError(f"system_outage.target: unknown system {self.system_outage.target}")
        if self.heartbeat_s <= 0 or self.door_batch_s <= 0:
            raise ValueError("heartbeat_s and door_batch_s: must be > 0")

    def _check_services(self, key: str, services: tuple[str, ...]) -> None:
        if not services or not set(services) <= set(self.service_names):
            raise ValueError(f"{key}: services {services} not all in the profile's services")

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    @property
    def opening_hours(self) -> int:
        return (self.close_at - self.open_at) // 3600


def _check_ids(key: str, ids: list[str] | tuple[str, ...]) -> None:
    for ident in ids:
        if not _ID.fullmatch(ident):
            raise ValueError(f"{key}: {ident!r} is not a contract identifier")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{key}: duplicate identifiers in {ids}")


NORMAL = Profile()

# Month-end: withdrawals and deposits surge, eight windows, and the plan's emergency window.
PEAK = dataclasses.replace(
    NORMAL,
    name="peak",
    date=dt.date(2026, 11, 30),
    expected_arrivals=600.0,
    hourly_weights=(1.7, 2.1, 1.4, 0.6, 0.8, 1.2, 1.5, 0.7),
    windows=(
        *DEFAULT_WINDOWS,
        WindowSpec("w07", (_W[0], _W[1]), (hm("12:00"), hm("12:45"))),
        WindowSpec("w08", (_W[0], _W[3], _W[2]), (hm("12:45"), hm("13:30"))),
    ),
    emergency=EmergencySpec(
        window="w09",
        services=_W,
        open_at_waiting=20,  # the plan: 20 people in the hall or a 20-minute wait
        close_at_waiting=5,
        staffing_delay_s=600.0,
        min_open_s=3600.0,
        active_from=hm("09:30"),
        active_until=hm("16:00"),
    ),
    complaints=4,
)

# A bad day: the core system is down 45 minutes mid-morning, the second door counter drops off
# the network, and the first one is reset by a technician at lunch.
OUTAGE = dataclasses.replace(
    NORMAL,
    name="outage",
    date=dt.date(2026, 11, 25),
    system_outage=Outage("core", hm("10:30"), 45 * 60, "core business system unreachable"),
    device_outage=Outage("dc-d2", hm("14:00"), 20 * 60),
    counter_reset=("d1", hm("12:30")),
    complaints=3,
)

QUIET = dataclasses.replace(
    NORMAL,
    name="quiet",
    date=dt.date(2026, 11, 27),
    expected_arrivals=120.0,
    windows=(*DEFAULT_WINDOWS[:4], WindowSpec("w05", (_W[2], _W[1]))),
    complaints=1,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (NORMAL, PEAK, OUTAGE, QUIET)}
