"""Which halls the alert tick evaluates: work in proportion to what changed, not to the halls.

A hall is evaluated on a tick when
- an event reached its state since its last evaluation (`Changes`, bumped by the pipeline);
- it has an alert episode (pending or firing): `for` holds, clearing, escalation and repeats
  are measured against the clock on every tick, as before;
- a time-only change of its rules is due (`next_due`): a device whose heartbeat runs out plus
  the rule's `after_s`, a system down for `after_s` or `escalate_after_s`, the hall's opening
  and closing time and midnight (a new business day empties the hall's "now"), the longest
  wait already endured reaching the peak's `wait_s` or `escalate_wait_s`, a service with
  people waiting and no window for the uncovered rule's `after_s`;
- its retained status is due for the contract's keep-alive (`outputs.status_due`);
- its sweep came: every hall has its own instant in each `SWEEP_S` (a phase from a hash of its
  name), and is evaluated on the first tick at or after it unless it was evaluated since. The
  halls' instants are spread over the period, so 500 quiet halls cost ~34 evaluations a 2 s
  tick rather than 500 every 15th tick (a 4 s tick that held ingest back).

Everything else about a hall moves only with events, except its estimated waits, which the
forward simulation recomputes from the clock (a queue whose service runs long grows its wait
with no event). Such a growth is caught within `SWEEP_S` (plus a tick) of when an every-tick
evaluation would have caught it; tests/daemon/pipeline/test_schedule.py proves the rest equal.
"""

from __future__ import annotations

import math
import time as timer
import zlib
from collections.abc import Callable, Iterable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from hallwatch.alerts.view import HallView
from hallwatch.daemon.config.alerts import HallRules, RuleSettings
from hallwatch.daemon.core.state import WAITING, Day, Hall, HallsState
from hallwatch.daemon.estimate.advice import Advice, Steps
from hallwatch.daemon.pipeline.turns import GiveWay, next_turn
from hallwatch.daemon.pipeline.views import Queue, QueueMemo, endured, uncovered_since

# Every hall is evaluated at least this often, whatever happened: the bound on how late a wait
# that grows past the queue-peak threshold with no event (and only that) may be noticed. 30 s
# is the status keep-alive of the contract, so a quiet hall costs one evaluation per 30 s.
SWEEP_S = 30.0
YIELD_S = 0.005  # building views, the tick hands the event loop back to ingest this often


def sweep_phase(hall: str) -> float:
    """The hall's offset in each sweep period, in [0, SWEEP_S): stable across restarts."""
    return zlib.crc32(hall.encode()) / 2**32 * SWEEP_S


def last_sweep(hall: str, now: float) -> float:
    """The hall's latest sweep instant at or before `now`."""
    return now - (now - sweep_phase(hall)) % SWEEP_S


class Changes:
    """A version per hall, bumped whenever the pipeline hands the hall's state an event (or the
    whole state is replaced). Readers keep the version they last saw and compare."""

    def __init__(self) -> None:
        self.version: dict[str, int] = {}
        self._n = 0

    @property
    def count(self) -> int:
        """How many touches so far: a version of the whole state."""
        return self._n

    def touch(self, hall: str) -> None:
        self._n += 1
        self.version[hall] = self._n

    def touch_all(self, halls: Iterable[str]) -> None:
        for hall in halls:
            self.touch(hall)


def _local_boundaries(now: float, zone: ZoneInfo, rules: HallRules) -> Iterable[float]:
    today = datetime.fromtimestamp(now, zone).date()
    for day, at in (
        (today, rules.open),
        (today, rules.close),
        (today + timedelta(days=1), time(0)),
        (today + timedelta(days=1), rules.open),
    ):
        yield datetime.combine(day, at, zone).timestamp()


def _waits_due(
    hall: Hall, day: Day | None, now: float, rules: HallRules, queue: Queue | None
) -> list[float]:
    """When a wait already endured reaches the queue peak's marks, and when a service with
    people waiting and no window has been so for the uncovered rule's `after_s`."""
    if day is None:
        return []
    peak = rules.queue_peak
    due = []
    for waited in endured(day, now, queue).values():
        since = now - waited
        due += [since + peak.wait_s, since + peak.escalate_wait_s]
    due += [
        since + rules.service_uncovered.after_s
        for since in uncovered_since(hall, day, now, queue).values()
    ]
    return due


def next_due(
    hall: Hall,
    day: Day | None,
    now: float,
    rules: HallRules,
    zone: ZoneInfo,
    heartbeat_timeout_s: float,
    queue: Queue | None = None,
) -> float:
    """The earliest time after `now` at which a rule on `hall` can change with no event (its
    estimated waits aside: see the module docstring): opening hours, heartbeats running out,
    a system down long enough, a wait already endured reaching the peak's marks, a service
    uncovered long enough."""
    due = list(_local_boundaries(now, zone, rules))
    due += _waits_due(hall, day, now, rules, queue)
    dev = rules.device_offline
    for d in hall.devices.values():
        down_at = d.last_seen + heartbeat_timeout_s if d.state == "online" else d.since
        due += [down_at, down_at + dev.after_s]
    sysr = rules.system_outage
    for s in hall.systems.values():
        if s.state == "down":
            due += [s.since + sysr.after_s, s.since + sysr.escalate_after_s]
    return min((t for t in due if t >= now), default=now + SWEEP_S)


class TickPlan:
    """Per hall: the version of its state last evaluated, when, and its next time-only change."""

    def __init__(self, give_way: GiveWay = next_turn) -> None:
        self._give_way = give_way  # between slices of views (pipeline/turns.py)
        self.seen: dict[str, int | None] = {}
        self.at: dict[str, float] = {}
        self.due: dict[str, float] = {}
        self._built: list[tuple[str, int | None, float]] = []
        self.swept: set[str] = set()  # the halls of the last `halls` whose sweep came
        self.queues = QueueMemo()  # each hall's queue as of the version its view last read

    def halls(
        self,
        halls: Iterable[str],
        changes: Changes,
        now: float,
        *,
        active: set[str],
        status_due: Callable[[str, float], bool],
    ) -> list[str]:
        """The halls to evaluate at `now`, sorted; `swept` says whose sweep came (the tick sends
        their status keep-alive then, so keep-alives spread as the sweeps do)."""
        out = []
        self.swept = set()
        for hall in sorted(halls):
            if self.at.get(hall, -math.inf) < last_sweep(hall, now):
                self.swept.add(hall)
                out.append(hall)
            elif (
                hall in active
                or self.seen.get(hall) != changes.version.get(hall)
                or now >= self.due.get(hall, now)
                or status_due(hall, now)
            ):
                out.append(hall)
        return out

    async def views(
        self,
        state: HallsState,
        changes: Changes,
        now: float,
        halls: Iterable[str],
        view: Callable[[str, Queue | None, float], HallView],
        *,
        rules: RuleSettings,
        heartbeat_timeout_s: float,
        renew_at: Callable[[str], float | None] = lambda _: None,
        clock: Callable[[], float],
    ) -> list[HallView]:
        """The views of `halls` from `now` on, handing the event loop back every YIELD_S
        (ingest, store and acknowledge go on meanwhile; an event that reaches a hall after its
        view was built leaves it changed for the next tick). Each view is built at `clock`'s
        time as it is built, never before `now`: the events ingested while the tick gave way
        are in its state, so it must not be dated before them (a peak would begin before the
        event that made it). `evaluated` records them, once the rules' results are stored."""
        zone = ZoneInfo(rules.timezone)
        out = []
        self._built = []
        yielded = timer.perf_counter()
        for name in halls:
            hall = state.halls.get(name)
            if hall is None:
                continue
            at = max(now, clock())
            version = changes.version.get(name)
            day = state.day_at(hall, at)
            queue = None if day is None else self.queues.get(name, day, version)
            out.append(view(name, queue, at))
            due = next_due(hall, day, at, rules.for_hall(name), zone, heartbeat_timeout_s, queue)
            renew = renew_at(name)
            due = due if renew is None else max(at, min(due, renew))
            self._built.append((name, version, due))
            if timer.perf_counter() - yielded > YIELD_S:
                await self._give_way()
                yielded = timer.perf_counter()
        return out

    def evaluated(self, now: float, live: Iterable[str]) -> None:
        """The halls of the last `views` evaluated at `now` (not called when the tick failed,
        so the next one evaluates them again); forget halls no longer `live`."""
        for name, version, due in self._built:
            self.seen[name] = version
            self.at[name] = now
            self.due[name] = due
        self._built = []
        keep = set(live)
        if len(self.at) > len(keep):
            for d in (self.seen, self.at, self.due):
                for hall in [h for h in d if h not in keep]:
                    del d[hall]
            self.queues.forget(keep)


ADVICE_TTL_S = 2.0  # a scrape or the screen reuses any hall's advice this young
# A hall that events keep changing gets new advice at most this often. Its view is built anew
# on every tick (headcount, endured waits, devices: exact), but the forward simulations of the
# advice (a new ticket's wait per service, the windows it would take, the closing overrun) cost
# 10-30 ms a hall: at 1,000 events/s over 100 halls, every hall changes every tick, and
# renewing each one's advice on each tick took 1.5 s of every 2 s (#14). The wait behind the
# 20-minute trigger may so be up to ADVICE_MIN_S older than the state (under SWEEP_S, the bound
# tests/daemon/pipeline/test_schedule.py holds the tick to).
ADVICE_MIN_S = 10.0
# What the tick spends renewing advice (of halls that have one) at most, per tick: a fifth of
# a core at 2 s a tick. Past it, the halls left keep their advice (oldest renewed first next
# tick): with many halls changing at once, advice ages instead of ingest slowing down.
RENEW_BUDGET_S = 0.4
# The advice of a hall where nobody waits is renewed at its sweep only once it is this old: no
# wait can grow with the clock there (a new ticket's wait only shrinks as services go on), and
# the forecast of arrivals moves by the hour. At 500 quiet halls a renewal every sweep (~10 ms
# each) cost 17 % of a core; this, under 2 %.
ADVICE_QUIET_S = 300.0


def has_waiting(state: HallsState, hall: str, now: float) -> bool:
    """Whether anyone waits in `hall` now (its business day's tickets)."""
    h = state.halls.get(hall)
    day = state.day_at(h, now) if h is not None else None
    return day is not None and any(t.status == WAITING for t in day.tickets.values())


class _Hit:
    __slots__ = ("advice", "at", "queue", "version")

    def __init__(self, at: float, version: int | None, queue: bool, advice: Advice | None):
        self.at, self.version, self.queue, self.advice = at, version, queue, advice


class AdviceCache:
    """Each hall's staffing advice (a forward simulation: the costly part of a hall's view),
    computed by `compute(hall, now)` (None for a hall not in the state) and kept with the
    hall's version in `changes` and whether anyone waited (`waiting(hall, now)`).

    The alert tick's own copy (`for_tick`) is renewed when an event reached the hall (at most
    every ADVICE_MIN_S: `renew_at` says when the tick must come back for it), when a
    time-only change of its rules came, and when its sweep came if anyone waits there (else once
    ADVICE_QUIET_S old), so what the tick notifies never depends on when a scrape or the screen
    last asked, and a wait that grows with the clock alone is seen within a sweep. Readers
    (`for_reader`) reuse the tick's while the tick would, or their own under ADVICE_TTL_S."""

    def __init__(
        self,
        compute: Callable[[str, float], Advice | None],
        changes: Callable[[], Changes],
        plan: Callable[[], TickPlan],
        waiting: Callable[[str, float], bool],
        steps: Callable[[str, float], Steps | None] | None = None,
        give_way: GiveWay = next_turn,
    ) -> None:
        self._compute = compute
        self._give_way = give_way
        self._steps = steps
        self._changes = changes
        self._plan = plan
        self._waiting = waiting
        self._tick: dict[str, _Hit] = {}
        self._read: dict[str, _Hit] = {}
        self.generation = 0  # advice computed so far: what readers key their own caches on
        self.behind = 0  # halls whose advice the last `renew` left for a later tick (budget)

    def _valid(self, hall: str, hit: _Hit | None, now: float) -> bool:
        if hit is None or hit.at > now:
            return False
        if hit.at < self._plan().due.get(hall, math.inf) <= now:
            return False  # a time-only change of its rules (opening, closing, midnight) since
        if hit.version != self._changes().version.get(hall):
            # Events since: renewed at most every ADVICE_MIN_S (`renew_at` has the tick come
            # back for it then, even if no event follows).
            return now - hit.at < ADVICE_MIN_S
        if hit.queue:
            return hit.at >= last_sweep(hall, now)
        return now - hit.at < ADVICE_QUIET_S

    def _fresh(self, hall: str, now: float) -> _Hit:
        self.generation += 1
        version = self._changes().version.get(hall)
        return _Hit(now, version, self._waiting(hall, now), self._compute(hall, now))

    async def renew(self, halls: Iterable[str], now: float) -> None:
        """Renew the tick's advice of `halls` where `for_tick` would, a forward simulation a step
        (`steps`), giving way every YIELD_S (pipeline/turns.py): a busy hall's advice is 30-80 ms
        of simulations, and ingest must not wait behind it (#14). A hall with no advice yet gets
        it now; others are renewed oldest first until RENEW_BUDGET_S is spent, the rest keep
        theirs until a later tick (`behind` counts them). Without `steps`, `for_tick` does it
        at once."""
        if self._steps is None:
            return
        due = [h for h in halls if not self._valid(h, self._tick.get(h), now)]
        due.sort(key=lambda h: (h in self._tick, self._tick[h].at if h in self._tick else 0.0))
        started = yielded = timer.perf_counter()
        self.behind = 0
        for hall in due:
            if hall in self._tick and timer.perf_counter() - started > RENEW_BUDGET_S:
                self.behind += 1
                continue
            self.generation += 1
            version = self._changes().version.get(hall)
            queue = self._waiting(hall, now)
            steps = self._steps(hall, now)
            advice = None
            while steps is not None:
                try:
                    next(steps)
                except StopIteration as done:
                    advice = done.value
                    break
                if timer.perf_counter() - yielded > YIELD_S:
                    # Events on their way in go first: every hop of an event's way (commit,
                    # apply, estimate, publish) runs before the next slice of simulations
                    # (p99 300-400 ms with `sleep(0)`, 80-350 with a pause as long as the slice).
                    await self._give_way()
                    yielded = timer.perf_counter()
            self._tick[hall] = self._read[hall] = _Hit(now, version, queue, advice)

    def for_tick(self, hall: str, now: float) -> Advice | None:
        hit = self._tick.get(hall)
        if self._steps is not None and hit is not None:
            return hit.advice  # `renew` renewed it if it could
        if not self._valid(hall, hit, now):
            hit = self._tick[hall] = self._read[hall] = self._fresh(hall, now)
        assert hit is not None
        return hit.advice

    def kept(self, hall: str) -> tuple[bool, Advice | None]:
        """Whether the tick holds advice for `hall`, and which: read without computing any."""
        hit = self._tick.get(hall)
        return (False, None) if hit is None else (True, hit.advice)

    def renew_at(self, hall: str) -> float | None:
        """When the tick's advice of `hall`, older than its state, is to be renewed (None: it
        is as new as the state)."""
        hit = self._tick.get(hall)
        if hit is None or hit.version == self._changes().version.get(hall):
            return None
        return hit.at + ADVICE_MIN_S

    def for_reader(self, hall: str, now: float) -> Advice | None:
        hit = self._tick.get(hall)
        if self._valid(hall, hit, now) or (self._steps is not None and hit is not None):
            assert hit is not None
            return hit.advice  # (a scrape never waits for a forward simulation the tick has)
        own = self._read.get(hall)
        if own is not None and 0 <= now - own.at < ADVICE_TTL_S:
            return own.advice
        own = self._read[hall] = self._fresh(hall, now)
        return own.advice

    def forget(self, live: Iterable[str]) -> None:
        """Drop the halls no longer `live` (the state's hall cap bounds what is kept)."""
        keep = set(live)
        for d in (self._tick, self._read):
            if len(d) > len(keep):
                for hall in [h for h in d if h not in keep]:
                    del d[hall]
