"""Discrete-event simulation of a service hall's day, as the MQTT messages its devices publish.

`simulate_day(profile, seed)` runs the hall (arrivals, queue, windows, doors, devices, systems,
complaints) and returns a `Day`: the messages in the contract's shape, sorted by event time, and
the ground truth per ticket visit so tests and benchmarks can score the daemon against reality.
The same profile and seed always give the same day, byte for byte.

Files: `write_day(day, path)` writes the contract's recorded-day JSON Lines to `path`, and the
truth to `truth_path(path)`, which is `path.with_suffix(".truth.jsonl")` ("day.jsonl" gives
"day.truth.jsonl"). `publish_live` replays a day to a broker, paced or as fast as possible.

Run it: `python -m sensors.simulator peak --seed 7 --out peak.jsonl` or
`python -m sensors.simulator normal --live localhost:1884 --speed 60`.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from hallwatch.sensors.profiles import PROFILES, Outage, Profile, ServiceSpec

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


def _within(outage: Outage | None, t: float) -> bool:
    return outage is not None and outage.start <= t < outage.start + outage.duration_s


class _Hall:
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
        p = self.p
        for t in self._arrival_times():
            self.schedule(t, "arrive")
        for w, spec in zip(self.windows, p.windows, strict=True):
            self.schedule(p.open_at - self.rng.uniform(0.0, 60.0), "open", w)
            if spec.lunch:
                self.schedule(spec.lunch[0], "pause", w)
                self.schedule(spec.lunch[1], "resume", w)
        self.schedule(p.close_at, "tick")  # so an already empty hall still closes on time
        while self.heap:
            t, _, kind, arg = heapq.heappop(self.heap)
            self.handlers[kind](t, arg)
            self._dispatch(t)
            self._check_emergency(t)
            self._check_closing(t)

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
                if _within(self.p.system_outage, t):
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


def _door_messages(hall: _Hall) -> None:
    p = hall.p
    for door in p.doors:
        device = f"dc-{door}"
        items = [(t, 1, i, o) for t, d, i, o in hall.crossings if d == door]
        if p.counter_reset and p.counter_reset[0] == door:
            items.append((float(p.counter_reset[1]), 0, 0, 0))
        items.sort()
        start = p.open_at - p.power_on_lead_s + 1.0
        pubs: list[tuple[float, int, int]] = [(start, 0, 0)]  # counters restart every night
        n_in_total = n_out_total = 0
        due: float | None = None
        for t, kind, n_in, n_out in items:
            if due is not None and t >= due:
                pubs.append((due, n_in_total, n_out_total))
                due = None
            if kind == 0:  # reset: flush what was counted before it, then the new baseline
                if due is not None:
                    pubs.append((t - 0.001, n_in_total, n_out_total))
                    due = None
                n_in_total = n_out_total = 0
                pubs.append((t, 0, 0))
                continue
            n_in_total += n_in
            n_out_total += n_out
            if due is None:
                due = (math.floor(t / p.door_batch_s) + 1) * p.door_batch_s
        if due is not None:
            pubs.append((due, n_in_total, n_out_total))
        outage = p.device_outage if p.device_outage and p.device_outage.target == device else None
        if outage:
            # Offline, the counter keeps counting and publishes its totals when it reconnects.
            end = outage.start + outage.duration_s
            held = [pub for pub in pubs if _within(outage, pub[0])]
            pubs = [pub for pub in pubs if not _within(outage, pub[0])]
            if held:
                pubs.append((end + 1.0, held[-1][1], held[-1][2]))
        for t, n_in, n_out in pubs:
            hall.emit(t, device, f"door/{door}", {"in_total": n_in, "out_total": n_out})


def _device_messages(hall: _Hall, day_end: float) -> None:
    p = hall.p
    rng = random.Random(f"hallwatch:{hall.seed}:devices")
    devices = [(TICKET_MACHINE, "ticket_machine")]
    devices += [(f"dc-{d}", "door_counter") for d in p.doors]
    devices += [
        (w.terminal, "window_terminal")
        for w in [*hall.windows, *([hall.emergency] if hall.emergency else [])]
    ]
    devices.append((DISPLAY, "display"))
    outage = p.device_outage
    kinds = dict(devices)
    if outage and kinds.get(outage.target) not in ("door_counter", "display"):
        # Ticket and window events drive the ground truth; losing them is not modelled.
        raise ValueError(f"device_outage.target: {outage.target} is not a door counter or display")
    start = p.open_at - p.power_on_lead_s
    for device, kind in devices:
        body = {"state": "online", "kind": kind}
        down = outage if outage and outage.target == device else None
        t = start + rng.uniform(0.0, 1.0)  # connect: the first retained "online"
        while t < day_end:
            if down and down.start <= t:
                # The broker publishes the last will; on reconnect the device says "online"
                # again and its heartbeat restarts from there.
                hall.emit(
                    down.start,
                    device,
                    f"device/{device}",
                    {"state": "offline", "kind": kind},
                    retain=True,
                )
                t = float(down.start + down.duration_s)
                down = None
            hall.emit(t, device, f"device/{device}", body, retain=True)
            t += p.heartbeat_s


def _system_messages(hall: _Hall) -> None:
    p = hall.p
    start = p.open_at - p.power_on_lead_s + 2.0
    for system in p.systems:
        hall.emit(start, f"sys-{system}", f"system/{system}", {"state": "up"})
        outage = p.system_outage
        if outage and outage.target == system:
            body: dict[str, Any] = {"state": "down"}
            if outage.detail:
                body["detail"] = outage.detail
            hall.emit(outage.start, f"sys-{system}", f"system/{system}", body)
            hall.emit(
                outage.start + outage.duration_s,
                f"sys-{system}",
                f"system/{system}",
                {"state": "up"},
            )


_SUMMARIES = (
    "等待时间过长",
    "窗口工作人员态度不好",
    "材料要求未一次性告知",
    "系统故障无法办理",
    "叫号顺序有疑问",
    "多跑了一趟",
)


def _complaint_messages(hall: _Hall) -> None:
    p = hall.p
    rng = random.Random(f"hallwatch:{hall.seed}:complaints")
    times = sorted(rng.uniform(p.open_at + 1800, p.close_at) for _ in range(p.complaints))
    for i, t in enumerate(times, start=1):
        body: dict[str, Any] = {
            "complaint_id": f"TS{p.date:%Y%m%d}{i:03d}",
            "channel": rng.choices(("visit", "phone", "letter", "online"), (6, 3, 1, 2))[0],
            "severity": "serious" if rng.random() < 0.2 else "normal",
            "summary": rng.choice(_SUMMARIES),
            "received_by": f"S{rng.randint(1, 40):03d}",
        }
        if rng.random() < 0.6:
            body["phone"] = f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
        hall.emit(t, FRONT_DESK, "complaint", body)


def _ts(at: float) -> str:
    return datetime.fromtimestamp(at, CST).isoformat(timespec="milliseconds")


def epoch(profile: Profile, seconds_after_midnight: float) -> float:
    """Epoch seconds of a clock time on the profile's date in +08:00."""
    midnight = datetime.combine(profile.date, time(0), tzinfo=CST).timestamp()
    return round(midnight + seconds_after_midnight, 3)


def simulate_day(profile: Profile, seed: int, root: str = "hall") -> Day:
    """Simulate one business day; deterministic in (profile, seed, root)."""
    hall = _Hall(profile, seed)
    hall.run()
    assert hall.closed_at is not None
    day_end = max(hall.closed_at, profile.close_at) + profile.power_on_lead_s
    _door_messages(hall)
    _device_messages(hall, day_end)
    _system_messages(hall)
    _complaint_messages(hall)

    def at(t: float) -> float:
        return epoch(profile, t)

    seqs: dict[str, int] = {}
    messages: list[SimMessage] = []
    # Sorting on the rounded time keeps `at` and the millisecond `ts` in the same order.
    for t, _, device, suffix, body, retain in sorted(hall.raw, key=lambda r: (at(r[0]), r[1])):
        seqs[device] = seq = seqs.get(device, 0) + 1
        when = at(t)
        # Device counters do not restart at midnight, so ids stay unique across days.
        payload = {"id": f"{device}:{profile.date:%Y%m%d}{seq:06d}", "ts": _ts(when), **body}
        messages.append(SimMessage(when, f"{root}/{profile.hall}/{suffix}", payload, retain))

    def maybe(t: float | None) -> float | None:
        return None if t is None else at(t)

    truth = [
        TicketTruth(
            profile.hall,
            v.ticket,
            v.spec.name,
            v.priority,
            at(v.queued_at),
            maybe(v.called_at),
            v.window,
            v.outcome,
            v.abandoned,
            maybe(v.completed_at),
            maybe(v.left_at),
            v.leg,
        )
        for v in hall.visits
    ]
    return Day(profile, seed, root, messages, truth)


# -- files, live publishing, summary ---------------------------------------------------------


def _json(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def truth_path(path: Path) -> Path:
    """Where `write_day` puts the ground truth: "day.jsonl" -> "day.truth.jsonl"."""
    return path.with_suffix(".truth.jsonl")


def write_day(day: Day, path: Path | str) -> Path:
    """Write the recorded day (contract format) and its truth; returns the truth's path."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as f:
        for m in day.messages:
            f.write(_json({"topic": m.topic, "payload": m.payload}) + "\n")
    out = truth_path(path)
    with out.open("w", encoding="utf-8") as f:
        for t in day.truth:
            f.write(_json(asdict(t)) + "\n")
    return out


async def publish_live(
    day: Day,
    *,
    host: str,
    port: int,
    speed: float | None,
    username: str | None = None,
    password: str | None = None,
    on_progress: Callable[[float, int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Publish the day at QoS 1 in event-time order, `speed` times real time (None/0: at once).

    Returns how many messages were published. `on_progress(sim_time, sent)` is called about
    once a second of wall time, and once at the end. Setting `stop` ends the replay before the
    next message: on Python 3.11 a task cancel that lands as a QoS 1 acknowledgement arrives is
    lost inside `asyncio.wait_for` (gh-86296), so cancelling alone cannot stop the replay.
    """
    import aiomqtt  # only the live path needs a broker client

    if speed is not None and speed < 0:
        raise ValueError(f"speed: must be None, 0 or positive, got {speed}")
    if not day.messages:
        return 0
    loop = asyncio.get_running_loop()
    first = day.messages[0].at
    wall0 = last_report = loop.time()
    sent = 0

    def report(sim_time: float) -> None:
        nonlocal last_report
        if on_progress is not None and loop.time() - last_report >= 1.0:
            last_report = loop.time()
            on_progress(sim_time, sent)

    async with aiomqtt.Client(host, port, username=username, password=password) as client:
        for m in day.messages:
            if speed:
                due = wall0 + (m.at - first) / speed
                while (delay := due - loop.time()) > 0 and not (stop and stop.is_set()):
                    await asyncio.sleep(min(delay, 0.2))  # wake to report and to see `stop`
                    report(first + (loop.time() - wall0) * speed)
            if stop is not None and stop.is_set():
                return sent
            await client.publish(m.topic, _json(m.payload).encode("utf-8"), qos=1, retain=m.retain)
            sent += 1
            report(m.at)
    if on_progress is not None:
        on_progress(day.messages[-1].at, sent)
    return sent


@dataclass(frozen=True)
class DaySummary:
    arrivals: int  # first tickets issued
    green_share: float
    appointment_share: float
    max_waiting: int  # most tickets in the queue at once
    max_wait_s: float  # longest issue/transfer -> call
    completed: int
    no_shows: int
    cancelled: int
    transfers: int
    last_close: float  # epoch seconds the last window closed
    emergency_opened: int  # times the emergency window opened


def summarize(day: Day) -> DaySummary:
    """Headline figures of a simulated day, from its truth and messages."""
    first = [t for t in day.truth if t.leg == 0]
    n = max(len(first), 1)
    steps: list[tuple[float, int]] = []
    waits: list[float] = []
    for t in day.truth:
        steps.append((t.issued_at, 1))
        end = t.called_at if t.called_at is not None else t.left_at
        if end is not None:
            steps.append((end, -1))
            waits.append(end - t.issued_at if t.called_at is not None else 0.0)
    level = peak = 0
    for _, delta in sorted(steps):  # at equal times, leaving (-1) counts before joining
        level += delta
        peak = max(peak, level)
    windows = [m for m in day.messages if "/window/" in m.topic]
    return DaySummary(
        arrivals=len(first),
        green_share=sum(t.priority == "green" for t in first) / n,
        appointment_share=sum(t.priority == "appointment" for t in first) / n,
        max_waiting=peak,
        max_wait_s=max(waits, default=0.0),
        completed=sum(t.outcome == "completed" for t in day.truth),
        no_shows=sum(t.outcome == "no_show" for t in day.truth),
        cancelled=sum(t.outcome == "cancelled" for t in day.truth),
        transfers=sum(t.leg > 0 for t in day.truth),
        last_close=max((m.at for m in windows if m.payload["state"] == "closed"), default=0.0),
        emergency_opened=sum(
            m.payload["emergency"] and m.payload["state"] == "open" for m in windows
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Simulate a service hall's day.")
    parser.add_argument("profile", choices=sorted(PROFILES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--root", default="hall")
    parser.add_argument("--out", type=Path, help="write the recorded day (and its .truth.jsonl)")
    parser.add_argument("--live", metavar="HOST:PORT", help="publish to this MQTT broker")
    parser.add_argument("--speed", type=float, default=None, help="x real time; omit: at once")
    args = parser.parse_args(argv)
    day = simulate_day(PROFILES[args.profile], args.seed, args.root)
    if args.out:
        write_day(day, args.out)
    if args.live:
        host, _, port = args.live.rpartition(":")
        sent = asyncio.run(
            publish_live(
                day,
                host=host,
                port=int(port),
                speed=args.speed,
                on_progress=lambda at, n: print(f"{_ts(at)} {n} sent", flush=True),
            )
        )
        print(f"published {sent} messages")
    print(summarize(day))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
