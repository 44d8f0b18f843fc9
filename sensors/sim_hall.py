"""The queueing core of the simulated hall: arrivals, the queue, windows and their staff, in
seconds after local midnight (`simulator.simulate_day` runs it and converts)."""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hallwatch.sensors.profiles import Outage, Profile, ServiceSpec
from hallwatch.sensors.sim_day import PRIORITY_RANK, TICKET_MACHINE, Outcome


@dataclass(eq=False)
class _Customer:
    party: int  # 1, or 2 with a companion; both cross the door together


@dataclass(eq=False)
class _Visit:
    uid: int  # enqueue order; events run in time order, so this is FIFO by queue entry
    ticket: str
    spec: ServiceSpec
    priority: str
    queued_at: float
    customer: _Customer
    leg: int = 0
    called_at: float | None = None
    window: str | None = None
    completed_at: float | None = None
    left_at: float | None = None
    outcome: Outcome = "open"
    abandoned: bool = False
    in_queue: bool = False


@dataclass(eq=False)
class _Window:
    window: str
    services: tuple[str, ...]
    emergency: bool
    state: str = "closed"
    current: _Visit | None = None
    busy: bool = False  # serving, or in the short gap before the next call
    pending: str | None = None  # "paused"/"closed", applied once the current customer is done
    opened_at: float = 0.0

    @property
    def terminal(self) -> str:
        return f"wt-{self.window}"


def _lognormal(rng: random.Random, mean: float, sigma: float) -> float:
    # Parametrised by the mean the profile states, not by the mean of the log.
    return rng.lognormvariate(math.log(mean) - sigma * sigma / 2.0, sigma)


def within(outage: Outage | None, t: float) -> bool:
    return outage is not None and outage.start <= t < outage.start + outage.duration_s


class Hall:
    """The queueing core. Times are seconds after local midnight; `simulate_day` converts."""

    def __init__(self, profile: Profile, seed: int) -> None:
        self.p, self.seed = profile, seed
        # Separate streams so that, e.g., changing the door miss rate does not reshuffle the queue.
        self.rng = random.Random(f"hallwatch:{seed}:queue")
        self.door_rng = random.Random(f"hallwatch:{seed}:doors")
        self.heap: list[tuple[float, int, str, Any]] = []
        self.order = 0
        self.raw: list[tuple[float, int, str, str, dict[str, Any], bool]] = []
        self.crossings: list[tuple[float, str, int, int]] = []
        self.queues: dict[tuple[str, int], deque[_Visit]] = {}
        self.visits: list[_Visit] = []
        self.numbers: dict[str, int] = {}
        self.waiting = 0
        self.in_flight = 0  # transfers scheduled but not yet back in the queue
        self.closed_at: float | None = None
        self.emergency_pending = False
        self.windows = [_Window(w.window, w.services, False) for w in profile.windows]
        self.emergency = (
            _Window(profile.emergency.window, profile.emergency.services, True)
            if profile.emergency
            else None
        )
        self.handlers: dict[str, Callable[[float, Any], None]] = {
            "arrive": self._on_arrive,
            "patience": self._on_patience,
            "end": self._on_end,
            "ready": self._on_ready,
            "transfer": self._on_transfer,
            "open": self._on_open,
            "pause": self._on_pause,
            "resume": self._on_resume,
            "eopen": self._on_eopen,
            "tick": lambda t, arg: None,
        }

    # -- plumbing ---------------------------------------------------------------------------

    def schedule(self, t: float, kind: str, arg: Any = None) -> None:
        self.order += 1
        heapq.heappush(self.heap, (t, self.order, kind, arg))

    def emit(
        self, t: float, device: str, suffix: str, body: dict[str, Any], retain: bool = False
    ) -> None:
        self.order += 1
        self.raw.append((t, self.order, device, suffix, body, retain))

    def cross(self, t: float, party: int, inward: bool) -> None:
        door = self.door_rng.choices(self.p.doors, self.p.door_weights)[0]
        counted = sum(self.door_rng.random() >= self.p.miss_rate for _ in range(party))
        if counted:
            self.crossings.append((t, door, counted if inward else 0, 0 if inward else counted))

    def leave(self, t: float, customer: _Customer) -> None:
        self.cross(t + self.door_rng.uniform(10.0, 60.0), customer.party, inward=False)

    def emit_window(self, t: float, w: _Window) -> None:
        body = {"state": w.state, "services": list(w.services), "emergency": w.emergency}
        self.emit(t, w.terminal, f"window/{w.window}", body)

    def set_state(self, t: float, w: _Window, state: str) -> None:
        w.state = state
        if state == "open":
            w.opened_at = t
        self.emit_window(t, w)

    # -- the day ----------------------------------------------------------------------------

    def run(self) -> None:
        self.start()
        while self.heap:
            self.step()

    def start(self) -> None:
        """Schedule the day: every arrival, each window's opening and its pause."""
        p = self.p
        for t in self._arrival_times():
            self.schedule(t, "arrive")
        for w, spec in zip(self.windows, p.windows, strict=True):
            self.schedule(p.open_at - self.rng.uniform(0.0, 60.0), "open", w)
            if spec.lunch:
                self.schedule(spec.lunch[0], "pause", w)
                self.schedule(spec.lunch[1], "resume", w)
        self.schedule(p.close_at, "tick")  # so an already empty hall still closes on time

    def step(self) -> tuple[float, str]:
        """Run the next event and the calls it allows; its time and kind (for harnesses that
        watch or fork the day one event at a time)."""
        t, _, kind, arg = heapq.heappop(self.heap)
        self.handlers[kind](t, arg)
        self._dispatch(t)
        self._check_emergency(t)
        self._check_closing(t)
        return t, kind

    def _arrival_times(self) -> list[float]:
        """Non-homogeneous Poisson arrivals by thinning a process at the peak hourly rate."""
        p = self.p
        total = sum(p.hourly_weights)
        rates = [p.expected_arrivals * w / total / 3600.0 for w in p.hourly_weights]
        top = max(rates)
        times: list[float] = []
        t = float(p.open_at)
        while True:
            t += self.rng.expovariate(top)
            if t >= p.close_at:
                return times
            if self.rng.random() * top < rates[int((t - p.open_at) // 3600)]:
                times.append(t)

    def _on_arrive(self, t: float, _: Any) -> None:
        p, rng = self.p, self.rng
        spec = rng.choices(p.services, [s.share for s in p.services])[0]
        u = rng.random()
        priority = (
            "green"
            if u < p.green_share
            else "appointment"
            if u < p.green_share + p.appointment_share
            else "normal"
        )
        customer = _Customer(2 if rng.random() < p.companion_share else 1)
        self.cross(t - self.door_rng.uniform(5.0, 45.0), customer.party, inward=True)
        self.numbers[spec.letter] = n = self.numbers.get(spec.letter, 0) + 1
        visit = _Visit(len(self.visits), f"{spec.letter}{n:03d}", spec, priority, t, customer)
        body = {
            "type": "issued",
            "ticket": visit.ticket,
            "service": spec.name,
            "priority": priority,
        }
        self.emit(t, TICKET_MACHINE, "ticket", body)
        self._enqueue(t, visit)

    def _enqueue(self, t: float, visit: _Visit) -> None:
        visit.in_queue = True
        self.visits.append(visit)
        key = (visit.spec.name, PRIORITY_RANK[visit.priority])
        self.queues.setdefault(key, deque()).append(visit)
        self.waiting += 1
        patience = _lognormal(self.rng, self.p.patience_mean_s, self.p.patience_sigma)
        self.schedule(t + patience, "patience", visit)

    def _on_patience(self, t: float, visit: _Visit) -> None:
        if not visit.in_queue:
            return
        visit.abandoned, visit.left_at = True, t
        if self.rng.random() < self.p.cancel_share:
            visit.in_queue, visit.outcome = False, "cancelled"
            self.waiting -= 1
            self.emit(t, TICKET_MACHINE, "ticket", {"type": "cancelled", "ticket": visit.ticket})
        # Either way they walk out now; a silent leaver's ticket stays in the queue.
        self.leave(t, visit.customer)

    def _pick(self, w: _Window) -> _Visit | None:
        """Contract order: green, then appointment, then normal; FIFO within a class."""
        for rank in range(3):
            best: deque[_Visit] | None = None
            for service in w.services:
                queue = self.queues.get((service, rank))
                while queue and not queue[0].in_queue:  # lazily drop cancelled tickets
                    queue.popleft()
                if queue and (best is None or queue[0].uid < best[0].uid):
                    best = queue
            if best is not None:
                return best.popleft()
        return None

    def _dispatch(self, t: float) -> None:
        for w in [*self.windows, *([self.emergency] if self.emergency else [])]:
            if w.state != "open" or w.busy or w.pending:
                continue
            visit = self._pick(w)
            if visit is None:
                continue
            visit.in_queue, visit.called_at, visit.window = False, t, w.window
            self.waiting -= 1
            w.current, w.busy = visit, True
            self.emit(
                t,
                w.terminal,
                "ticket",
                {"type": "called", "ticket": visit.ticket, "window": w.window},
            )
            if visit.abandoned:
                duration = self.p.no_show_wait_s
            else:
                duration = _lognormal(self.rng, visit.spec.mean_s, visit.spec.sigma)
                if within(self.p.system_outage, t):
                    duration *= self.p.outage_service_factor
            self.schedule(t + duration, "end", w)

    def _on_end(self, t: float, w: _Window) -> None:
        visit = w.current
        assert visit is not None
        w.current = None
        body = {"ticket": visit.ticket, "window": w.window}
        if visit.abandoned:
            visit.outcome = "no_show"
            self.emit(t, w.terminal, "ticket", {"type": "no_show", **body})
        else:
            visit.outcome, visit.completed_at = "completed", t
            self.emit(t, w.terminal, "ticket", {"type": "completed", **body})
            if visit.leg == 0 and self.rng.random() < self.p.transfer_share:
                self.in_flight += 1
                self.schedule(t + self.rng.uniform(1.0, 3.0), "transfer", visit)
            else:
                self.leave(t, visit.customer)
        self.schedule(t + self.rng.uniform(*self.p.call_gap_s), "ready", w)

    def _on_ready(self, t: float, w: _Window) -> None:
        w.busy = False
        if w.pending:
            self.set_state(t, w, w.pending)
            w.pending = None

    def _on_transfer(self, t: float, old: _Visit) -> None:
        self.in_flight -= 1
        others = [s for s in self.p.services if s is not old.spec]
        spec = self.rng.choices(others, [s.share for s in others])[0]
        visit = _Visit(
            len(self.visits), old.ticket, spec, old.priority, t, old.customer, leg=old.leg + 1
        )
        # Sent by the window that served them; they rejoin the back of their class's queue.
        self.emit(
            t,
            f"wt-{old.window}",
            "ticket",
            {"type": "transferred", "ticket": old.ticket, "service": spec.name},
        )
        self._enqueue(t, visit)

    def _on_open(self, t: float, w: _Window) -> None:
        self.set_state(t, w, "open")

    def _on_pause(self, t: float, w: _Window) -> None:
        if w.state != "open":
            return
        if w.busy:
            w.pending = "paused"  # staff finish the customer in front of them first
        else:
            self.set_state(t, w, "paused")

    def _on_resume(self, t: float, w: _Window) -> None:
        if w.pending == "paused":
            w.pending = None  # the service ran through the whole lunch turn
        elif w.state == "paused":
            self.set_state(t, w, "open")

    def _check_emergency(self, t: float) -> None:
        e, w = self.p.emergency, self.emergency
        if e is None or w is None or self.closed_at is not None:
            return
        if (
            w.state == "closed"
            and not self.emergency_pending
            and e.active_from <= t <= e.active_until
            and self.waiting >= e.open_at_waiting
        ):
            self.emergency_pending = True
            self.schedule(t + e.staffing_delay_s, "eopen", w)
        elif (
            w.state == "open"
            and w.pending is None
            and t < self.p.close_at
            and self.waiting <= e.close_at_waiting
            and t - w.opened_at >= e.min_open_s
        ):
            if w.busy:
                w.pending = "closed"
            else:
                self.set_state(t, w, "closed")

    def _on_eopen(self, t: float, w: _Window) -> None:
        self.emergency_pending = False
        if self.closed_at is None and w.state == "closed":
            self.set_state(t, w, "open")

    def _check_closing(self, t: float) -> None:
        """After closing time the queue is still served; windows close once the hall is empty."""
        if (
            self.closed_at is not None
            or t < self.p.close_at
            or self.waiting
            or self.in_flight
            or any(w.busy for w in self.windows)
            or (self.emergency is not None and self.emergency.busy)
        ):
            return
        self.closed_at = t
        for w in [*self.windows, *([self.emergency] if self.emergency else [])]:
            if w.state != "closed":
                self.set_state(t, w, "closed")


# -- the rest of the hall: doors, devices, systems, complaints ---------------------------------
