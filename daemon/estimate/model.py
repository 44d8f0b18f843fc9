"""Wait-time estimation for issued tickets, staffing advice and closing-time overrun.

Pure: `Estimator.on_event(event, state)` runs right after `state.apply(event)` and reads the live
state; it holds no clock. Its estimate for a ticket is a deterministic forward simulation of the
calling rules (green, appointment, normal; FIFO within a class; a window only calls the
services it serves) over the current queue, where

- a window now serving finishes after the expected *residual* service time E[S - a | S > a]
  of a log-normal fitted per service to recent completions (a = time served so far);
- each ticket ahead takes its expected handling time: the recall time if it turns out to be a
  no-show (probability learned by how long tickets had waited when called), the service mean
  otherwise, and nothing if it is cancelled before its turn;
- paused windows come back after the residual pause E[P - a | P > a] of a log-normal fitted
  to the learned pauses (a = time paused so far: an overlong pause is not over "now");
- higher classes keep arriving at their recent rate and overtake.

The estimate is the median over sampled runs (window residuals drawn by Latin hypercube). When
no queued ticket stands before the target at any window serving its service (first in line,
typical of a quiet hall), its wait is the first of those windows' next calls, and the median of
that minimum is computed exactly from the product of their survival functions instead.

Learned data (`Learned`) survives restarts through `snapshot()` / `Estimator.restore()`.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time
from statistics import NormalDist
from zoneinfo import ZoneInfo

import msgspec
from hallwatch.daemon.core.state import WAITING, Day, Hall, HallsState, Ticket, waiting_tickets
from hallwatch.daemon.estimate import erlang as staffing
from hallwatch.daemon.estimate import quickwait
from hallwatch.daemon.estimate.offpeak import WaitTable
from hallwatch.daemon.estimate.predictors import abandonment_rate
from hallwatch.sensors.events import PRIORITY_RANK, Event, TicketEvent, WindowEvent
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

SNAPSHOT_VERSION = 1
ERROR_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0)  # |error|
_KEEP_SERVICE = 120  # completions per service the fit uses: recent enough to follow slow-downs
_KEEP_ERRORS = 200
_AGE_BIN_S = 300.0
_AGE_BINS = 30
_SEP = "\x1f"
_QUICK_REFRESH_S = 5.0
_SAMPLE_BUDGET = 8000  # queue items simulated per estimate, over all its sampled runs
_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class EstimateOut:
    """Published on `{root}/{hall}/estimate` for an issued ticket."""

    hall: str
    ticket: str
    service: str
    priority: str
    position: int
    estimated_wait_s: float | None
    at: float


@dataclass(frozen=True, slots=True)
class ErrorOut:
    """A remembered estimate met its outcome: the ticket was called."""

    hall: str
    service: str
    estimated_wait_s: float
    actual_wait_s: float


@dataclass(frozen=True, slots=True)
class ServiceAdvice:
    service: str
    waiting: int
    estimated_wait_s: float | None  # a normal ticket taken now
    extra_backlog: int  # windows to add so that wait is under the target
    extra_arrivals: int  # windows to add so the current arrival rate is held under the target


@dataclass(frozen=True, slots=True)
class Advice:
    hall: str
    at: float
    target_wait_s: float
    services: tuple[ServiceAdvice, ...]
    closing_at: float
    clear_at: float | None  # when the current queue is served, at the current staffing
    closing_overrun_s: float  # extended hours (延时服务) the current queue needs
    projected_overrun_s: float  # the same, with the expected arrivals until closing


class Pending(msgspec.Struct, array_like=True):
    service: str
    estimate: float | None
    issued_at: float


class Learned(msgspec.Struct):
    """Everything learned from events; the estimator's persistable memory."""

    service_logs: dict[str, list[float]] = msgspec.field(default_factory=dict)
    recall: list[float] = msgspec.field(default_factory=list)
    gaps: list[float] = msgspec.field(default_factory=list)
    pauses: list[float] = msgspec.field(default_factory=list)
    age_bins: list[list[int]] = msgspec.field(
        default_factory=lambda: [[0, 0] for _ in range(_AGE_BINS)]
    )  # per bin of wait-at-call: [called, of which no-show]
    cancelled: int = 0
    no_shows: int = 0
    call_age: dict[str, float] = msgspec.field(default_factory=dict)  # hall/ticket -> age at call
    pending: dict[str, Pending] = msgspec.field(default_factory=dict)
    errors: dict[str, list[float]] = msgspec.field(default_factory=dict)  # hall/service: signed
    hist: dict[str, list[float]] = msgspec.field(default_factory=dict)  # buckets..., sum, count
    last_end: dict[str, float] = msgspec.field(default_factory=dict)  # hall/window
    paused_at: dict[str, float] = msgspec.field(default_factory=dict)  # hall/window
    waits: dict[str, WaitTable] = msgspec.field(default_factory=dict)  # hall -> off-peak table


class _Envelope(msgspec.Struct):
    version: int
    learned: Learned


@dataclass(slots=True)
class _Item:
    service: str
    rank: int
    issued_at: float
    age_now: float  # how long it has waited at the simulation start
    real: bool = True
    target: bool = False
    idx: int = 0  # index into a sample's random draws


@dataclass(slots=True)
class _Win:
    name: str  # seeds its random draws, so opening another window leaves these unchanged
    services: frozenset[str]
    free: float  # expected time of its next call
    # When serving: the current customer's service law and how long they have been served;
    # when paused: the pause law and how long the window has been paused.
    law: LogNormal | None = None
    served: float = 0.0
    p_recall: float = 0.0  # probability the current call is a no-show being recalled
    recall_left: float = 0.0
    gap: float = 0.0  # between the end of `law` and the next call


_Handling = Callable[[_Item, float], float | None]


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


class LogNormal:
    """Service-time law: log-normal with log-mean `mu` and log-sd `sigma`."""

    def __init__(self, mu: float, sigma: float) -> None:
        self.mu, self.sigma = mu, max(sigma, 0.05)

    @property
    def mean(self) -> float:
        return math.exp(self.mu + self.sigma**2 / 2.0)

    def survival(self, a: float) -> float:
        return 1.0 if a <= 0 else _phi((self.mu - math.log(a)) / self.sigma)

    def residual(self, a: float) -> float:
        """E[S - a | S > a]: expected remaining time after `a` seconds of service."""
        if a <= 0:
            return self.mean
        la, s = math.log(a), self.sigma
        tail = _phi((self.mu - la) / s)
        if tail < 1e-12:  # far in the tail the log-normal residual grows roughly like a s^2/z
            return a * s * s / max((la - self.mu) / s, 1.0)
        return max(self.mean * _phi((self.mu + s * s - la) / s) / tail - a, 0.0)


class Estimator:
    """The pure wait estimator; see the module docstring."""

    def __init__(
        self,
        *,
        tz: str = "Asia/Shanghai",
        target_wait_s: float = 1200.0,
        closing: str = "17:00",
        prior_service_s: float = 300.0,
        prior_sigma: float = 0.5,
        prior_recall_s: float = 60.0,
        prior_gap_s: float = 10.0,
        prior_pause_s: float = 1800.0,
        rate_window_s: float = 3600.0,
        max_extra_windows: int = 10,
        samples: int = 32,
        quantile: float = 0.5,
        shrink: float = 2.0,
        learned: Learned | None = None,
    ) -> None:
        if target_wait_s <= 0:
            raise ValueError(f"target_wait_s: must be > 0, got {target_wait_s}")
        if min(prior_service_s, prior_recall_s, prior_pause_s, rate_window_s) <= 0:
            raise ValueError(
                "prior_service_s, prior_recall_s, prior_pause_s, rate_window_s: must be > 0"
            )
        self.tz, self.zone = tz, ZoneInfo(tz)
        self.target_wait_s = target_wait_s
        self.closing = time.fromisoformat(closing)
        self.prior = LogNormal(math.log(prior_service_s) - prior_sigma**2 / 2, prior_sigma)
        self.prior_recall_s, self.prior_gap_s = prior_recall_s, prior_gap_s
        self.prior_pause_s, self.rate_window_s = prior_pause_s, rate_window_s
        self.max_extra_windows = max_extra_windows
        self.samples = samples
        self.quantile = quantile
        self.shrink = shrink
        self.learned = learned or Learned()
        self._laws: dict[str, LogNormal] | None = None
        self.prior_pause = LogNormal(math.log(prior_pause_s) - prior_sigma**2 / 2, prior_sigma)
        self._pause_law: LogNormal | None = None
        self._q: list[float] | None = None
        # Quick mode (set by the daemon while it is behind, e.g. a flood of tickets): an
        # issued ticket gets a queue-length estimate from a per-hall count refreshed every
        # few seconds, instead of a forward simulation over the whole queue.
        self.quick = False
        self._quick: dict[str, tuple[float, dict[tuple[str, int], int]]] = {}
        self._issued_since_prune = 0

    # -- persistence ------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        return msgspec.json.encode(_Envelope(SNAPSHOT_VERSION, self.learned))

    @classmethod
    def restore(cls, blob: bytes, **kw: object) -> Estimator:
        """An estimator with the learned data of `blob`; a fresh one if it cannot be read."""
        try:
            env = msgspec.json.decode(blob, type=_Envelope)
            learned = env.learned if env.version == SNAPSHOT_VERSION else None
        except msgspec.DecodeError:
            learned = None
        return cls(learned=learned, **kw)  # type: ignore[arg-type]

    # -- events -----------------------------------------------------------------------------

    def on_event(self, event: Event, state: HallsState) -> list[EstimateOut | ErrorOut]:
        """Learn from one applied event; an estimate for `issued`, an error for `called`."""
        if isinstance(event, WindowEvent):
            self._on_window(event)
            return []
        if not isinstance(event, TicketEvent):
            return []
        hall = state.halls.get(event.hall)
        day = hall.today if hall else None
        if hall is None or day is None or day.day != state.business_day(event.ts):
            return []  # not today's ticket (the lane ran behind across midnight): nothing to learn
        t = day.tickets.get(event.ticket)
        key = f"{event.hall}{_SEP}{event.ticket}"
        L = self.learned
        if t is None:
            return []  # a ticket the state did not take: nothing to estimate or learn
        if event.type == "issued":
            out = self._on_issued(event, hall, day, t, key)
            return [out] if out is not None else []
        if event.type == "called" and t.called_at == event.ts:
            return self._on_called(event, t, key)
        if event.type in ("completed", "no_show") and t.called_at is not None:
            dur = event.ts - t.called_at
            age = L.call_age.pop(key, None)
            if age is not None:
                b = L.age_bins[min(int(age // _AGE_BIN_S), _AGE_BINS - 1)]
                b[0] += 1
                b[1] += event.type == "no_show"
                self._q = None  # the no-show curve is fitted to these bins: fit it again
            if event.type == "completed" and t.service and dur > 0:
                logs = L.service_logs.setdefault(t.service, [])
                _push(logs, math.log(dur), _KEEP_SERVICE)
                self._laws = None
            elif event.type == "no_show":
                L.no_shows += 1
                self._q = None
                if dur >= 0:
                    _push(L.recall, dur, 50)
            if event.window:
                L.last_end[f"{event.hall}{_SEP}{event.window}"] = event.ts
        elif event.type == "cancelled":
            L.cancelled += 1
            L.pending.pop(key, None)
        elif event.type == "transferred":
            L.pending.pop(key, None)
        return []

    def _on_window(self, ev: WindowEvent) -> None:
        L, key = self.learned, f"{ev.hall}{_SEP}{ev.window}"
        if ev.state == "paused":
            L.paused_at.setdefault(key, ev.ts)
        else:
            since = L.paused_at.pop(key, None)
            # A pause across the night is the hall closed, not a break in service.
            if ev.state == "open" and since is not None and 0 < ev.ts - since < 4 * 3600:
                _push(L.pauses, ev.ts - since, 50)
                self._pause_law = None

    def _on_issued(
        self, ev: TicketEvent, hall: Hall, day: Day, t: Ticket, key: str
    ) -> EstimateOut | None:
        service = t.service or ev.service or ""
        if t.status != WAITING:  # its call overtook its issue on the wire
            return EstimateOut(ev.hall, ev.ticket, service, t.priority, 0, 0.0, ev.ts)
        if t.first_issued_at is not None and t.first_issued_at != ev.ts:
            return None  # a second `issued` for the same ticket (another id): already estimated
        if self.quick:
            est, position = self._quick_estimate(ev.hall, hall, day, t, ev.ts)
        else:
            est, position = self._simulate_ticket(ev.hall, hall, day, ev.ticket, t, ev.ts)
        L = self.learned
        # Tickets never called (the hall closed, an event lost) must not pile up forever.
        self._issued_since_prune += 1
        if self._issued_since_prune >= 500:
            self._issued_since_prune = 0
            for k in [k for k, p in L.pending.items() if p.issued_at < ev.ts - 86400.0]:
                del L.pending[k]
        while len(L.call_age) > 5000:
            del L.call_age[next(iter(L.call_age))]
        if not self.quick:  # the accuracy metrics judge the estimator, not its fallback
            L.pending[key] = Pending(service, est, t.issued_at or ev.ts)
        return EstimateOut(ev.hall, ev.ticket, service, t.priority, position, est, ev.ts)

    def _on_called(self, ev: TicketEvent, t: Ticket, key: str) -> list[EstimateOut | ErrorOut]:
        L = self.learned
        end = L.last_end.get(f"{ev.hall}{_SEP}{ev.window}")
        if end is not None and t.issued_at is not None and t.issued_at < end <= ev.ts:
            if ev.ts - end <= 120.0:  # the window had work waiting: a pure turnaround gap
                _push(L.gaps, ev.ts - end, 100)
        if t.issued_at is None:
            return []
        actual = ev.ts - t.issued_at
        L.call_age[key] = actual
        L.waits.setdefault(ev.hall, WaitTable()).add(t.issued_at, actual, self.zone)
        p = L.pending.pop(key, None)
        if p is None or p.estimate is None:
            return []
        err = p.estimate - actual
        ekey = f"{ev.hall}{_SEP}{p.service}"
        _push(L.errors.setdefault(ekey, []), err, _KEEP_ERRORS)
        h = L.hist.setdefault(ekey, [0.0] * (len(ERROR_BUCKETS) + 2))
        for i, bound in enumerate(ERROR_BUCKETS):
            if abs(err) <= bound:
                h[i] += 1
        h[-2] += abs(err)
        h[-1] += 1
        return [ErrorOut(ev.hall, p.service, p.estimate, actual)]

    # -- learned laws -----------------------------------------------------------------------

    def law(self, service: str) -> LogNormal:
        """Service-time law for `service`: its own fit, shrunk to the pooled fit and the prior."""
        if self._laws is None:
            self._laws = {}
        law = self._laws.get(service)
        if law is None:
            pooled = [x for logs in self.learned.service_logs.values() for x in logs]
            base = _fit(pooled, self.prior, self.shrink)
            law = self._laws[service] = _fit(
                self.learned.service_logs.get(service, []), base, self.shrink
            )
        return law

    def rolling_mae(self, hall: str, service: str) -> float | None:
        """Mean absolute error of the last estimates for this service that met their call."""
        errs = self.learned.errors.get(f"{hall}{_SEP}{service}")
        return sum(abs(e) for e in errs) / len(errs) if errs else None

    def mean_service_s(self, service: str) -> float:
        return self.law(service).mean

    @property
    def recall_s(self) -> float:
        r = self.learned.recall
        return sum(r) / len(r) if r else self.prior_recall_s

    @property
    def gap_s(self) -> float:
        g = self.learned.gaps
        return (sum(g) + 3 * self.prior_gap_s) / (len(g) + 3)

    @property
    def pause_s(self) -> float:
        return self.pause_law.mean

    @property
    def pause_law(self) -> LogNormal:
        """Pause-length law: a log-normal fit of the learned pauses, shrunk to the prior."""
        if self._pause_law is None:
            logs = [math.log(x) for x in self.learned.pauses if x > 0]
            self._pause_law = _fit(logs, self.prior_pause, 1.0)
        return self._pause_law

    def no_show_p(self, age: float) -> float:
        """P(no-show | called after waiting `age` s): binned, pooled to the mean, monotone,
        linear between bin centres (so a later call never makes a window free up earlier)."""
        if self._q is None:
            bins = self.learned.age_bins
            n = sum(b[0] for b in bins)
            g = (sum(b[1] for b in bins) + 0.5) / (n + 10.0)
            raw = [((b[1] + 4 * g) / (b[0] + 4), b[0] + 4.0) for b in bins]
            self._q = _isotonic(raw)
        x = age / _AGE_BIN_S - 0.5
        if x <= 0:
            return self._q[0]
        i = int(x)
        if i >= _AGE_BINS - 1:
            return self._q[-1]
        return self._q[i] + (self._q[i + 1] - self._q[i]) * (x - i)

    @property
    def cancel_share(self) -> float:
        L = self.learned
        return (L.cancelled + 1.0) / (L.cancelled + L.no_shows + 4.0)

    def _cancel_p(self, age_now: float, age_call: float) -> float:
        """P(a ticket still waiting at age_now is cancelled before its call at age_call)."""
        k = self.cancel_share
        if k >= 1.0 or age_call <= age_now:
            return 0.0

        def gave_up(age: float) -> float:  # P(patience < age), from the no-show share
            q = self.no_show_p(age)
            return q / ((1.0 - k) + k * q)

        f0, f1 = gave_up(age_now), gave_up(age_call)
        return min(max(k * (f1 - f0) / max(1.0 - k * f0, 1e-9), 0.0), 1.0)

    def _handling(self, item: _Item, t: float) -> float:
        """Expected time a window spends on `item` if it is called at `t` (gap included)."""
        age = t - item.issued_at
        q = self.no_show_p(age)
        work = q * self.recall_s + (1.0 - q) * self.law(item.service).mean + self.gap_s
        return (1.0 - self._cancel_p(item.age_now, age)) * work

    def _sampler(self, draws: list[tuple[float, float, float]]) -> _Handling:
        """One random realisation of handling times; `draws` holds each item's uniforms."""
        recall, gap = self.recall_s + self.gap_s, self.gap_s

        def handle(item: _Item, t: float) -> float | None:
            u_cancel, u_ns, z = draws[item.idx]
            age = t - item.issued_at
            if not item.target and u_cancel < self._cancel_p(item.age_now, age):
                return None
            if u_ns < self.no_show_p(age):
                return recall
            law = self.law(item.service)
            return math.exp(law.mu + law.sigma * z) + gap

        return handle

    # -- the forward simulation -------------------------------------------------------------

    def _window(self, hall_name: str, hall: Hall, day: Day, name: str, now: float) -> _Win | None:
        """A window as the simulation sees it, or None if it is closed."""
        w = hall.windows[name]
        key = f"{hall_name}{_SEP}{name}"
        services = frozenset(w.services)
        if w.state == "paused":
            # Back after the residual pause E[P - a | P > a]: a window paused longer than the
            # usual pause is not about to return "now", it is on an unusually long one.
            since = self.learned.paused_at.get(key, w.since)
            a = max(0.0, now - since)
            law = self.pause_law
            return _Win(name, services, now + law.residual(a), law, a)
        if w.state != "open":
            return None
        if w.serving is not None and w.serving_since is not None:
            a = max(0.0, now - w.serving_since)
            cur = day.tickets.get(w.serving)
            law = self.law(cur.service or "") if cur else self.law("")
            rest = law.residual(a)
            recall = self.recall_s
            p = 0.0
            if cur is not None and cur.issued_at is not None and a < recall:
                q = self.no_show_p(w.serving_since - cur.issued_at)
                surv = law.survival(a)
                p = q / (q + (1.0 - q) * surv) if q + (1.0 - q) * surv > 0 else 0.0
                rest = p * (recall - a) + (1.0 - p) * rest
            return _Win(
                name, services, now + rest + self.gap_s, law, a, p, max(0.0, recall - a), self.gap_s
            )
        end = self.learned.last_end.get(key)
        return _Win(name, services, max(now, end + self.gap_s) if end is not None else now)

    def _windows(
        self, hall_name: str, hall: Hall, day: Day, now: float, extra: Iterable[str] = ()
    ) -> list[_Win]:
        out = []
        for name in sorted(hall.windows):
            win = self._window(hall_name, hall, day, name, now)
            if win is not None:
                out.append(win)
        out.extend(_Win(f"+{i}", frozenset((s,)), now) for i, s in enumerate(extra))
        return out

    def _sample_frees(
        self, wins: list[_Win], now: float, seed: str, strata: list[list[int]], r: int
    ) -> list[float]:
        """Random next-call times of the windows in run `r`: residual services drawn from
        S | S > a (pauses from P | P > a), each within its stratum of `strata`."""
        out = []
        n = len(strata[0]) if strata else 1
        for k, w in enumerate(wins):
            if w.law is None:
                out.append(w.free)
                continue
            u = (strata[k][r] + _uniform(f"{seed}:{r}:{w.name}")) / n
            if u < w.p_recall:
                out.append(now + w.recall_left + w.gap)
            else:
                u = (u - w.p_recall) / (1.0 - w.p_recall)
                out.append(now + _residual_draw(w.law, w.served, u) + w.gap)
        return out

    def _estimate(
        self,
        wins: list[_Win],
        items: list[_Item],
        below_rank: int,
        day: Day,
        now: float,
        seed: str,
        samples: int | None = None,
    ) -> tuple[float | None, int]:
        """Median call time of the target over `samples` random runs, and its position; past
        `quickwait.SIM_MAX_ITEMS` tickets to run, the queue-length estimate instead."""
        if len(items) + self._expected_arrivals(day, now, below_rank) > quickwait.SIM_MAX_ITEMS:
            return self._queue_length(wins, items)
        for i, it in enumerate(items):
            it.idx = i
        called, position = _run(
            [w.free for w in wins],
            wins,
            items + self._arrivals(day, now, below_rank),
            self._handling,
        )
        # Sampling costs samples x queue length; a flood of tickets (or a hostile device) must
        # not stall the daemon, so long queues get fewer runs, down to the mean-value run.
        samples = self.samples if samples is None else samples
        samples = min(samples, _SAMPLE_BUDGET // max(1, len(items)))
        if called is None or samples <= 0:
            return (None if called is None else max(0.0, called - now)), position
        rates = [(k, r) for k, r in self.arrival_rates(day, now).items() if k[1] < below_rank]
        horizon = min(self._closing_ts(now), now + 3 * 3600.0)
        waits = []
        # Latin hypercube over the windows' residual draws: run r draws window w's residual
        # from stratum strata[w][r] of `samples` equal ones, so 32 runs cover each window's
        # law evenly (less noise in the median than independent draws, at the same cost).
        # Each window's strata are keyed by its name: opening a window leaves the others'.
        strata = []
        for w in wins:
            perm = list(range(samples))
            random.Random(f"{seed}:{w.name}").shuffle(perm)
            strata.append(perm)
        for r in range(samples):
            rng = random.Random(f"{seed}:{r}")
            arrivals = _poisson(rates, now, horizon, rng)
            run = items + arrivals
            for i in range(len(items), len(run)):
                run[i].idx = i
            draws = [(rng.random(), rng.random(), rng.gauss(0.0, 1.0)) for _ in run]
            frees = self._sample_frees(wins, now, seed, strata, r)
            t, _ = _run(frees, wins, run, self._sampler(draws))
            if t is not None:
                waits.append(max(0.0, t - now))
        if not waits:
            return None, position
        wait = _quantile(waits, self.quantile)
        target = next((it for it in items if it.target), None)
        if target is not None:
            clear = _clear_quantile(wins, items, target, now, self.quantile)
            if clear is not None:
                bound, exact = clear
                wait = bound if exact else min(wait, bound)
        return wait, position

    def _queue_length(self, wins: list[_Win], items: list[_Item]) -> tuple[float | None, int]:
        """The target's queue-length wait: the tickets of its service it would be called after,
        over the windows serving the service (its bounded fallback)."""
        target = next((it for it in items if it.target), None)
        if target is None:
            return None, 0
        key = (target.rank, target.issued_at)
        ahead = sum(
            1
            for it in items
            if it.real and not it.target and it.service == target.service
            and (it.rank, it.issued_at) <= key
        )  # fmt: skip
        serving = sum(1 for w in wins if target.service in w.services)
        cycle = self.law(target.service).mean + self.gap_s
        return quickwait.queue_wait(ahead, serving, cycle), ahead

    def _expected_arrivals(self, day: Day, now: float, below_rank: int) -> float:
        """How many overtaking tickets (rank below `below_rank`) `_arrivals` would add."""
        span = max(0.0, min(self._closing_ts(now), now + 3 * 3600.0) - now)
        return sum(
            r * span for (_, rank), r in self.arrival_rates(day, now).items() if rank < below_rank
        )

    def _closing_ts(self, now: float) -> float:
        local = datetime.fromtimestamp(now, self.zone)
        return datetime.combine(local.date(), self.closing, self.zone).timestamp()

    def arrival_rates(self, day: Day, now: float) -> dict[tuple[str, int], float]:
        """Recent arrivals per second by (service, class rank), from today's tickets."""
        first = min((t.issued_at for t in day.tickets.values() if t.issued_at), default=now)
        span = max(min(self.rate_window_s, now - first), 900.0)
        counts: dict[tuple[str, int], int] = {}
        for t in day.tickets.values():
            if t.service and t.issued_at is not None and now - span < t.issued_at <= now:
                k = (t.service, PRIORITY_RANK.get(t.priority, 2))
                counts[k] = counts.get(k, 0) + 1
        return {k: n / span for k, n in counts.items()}

    def _queue(self, day: Day, now: float, target: str | None) -> list[_Item]:
        return [
            _Item(
                t.service or "",
                PRIORITY_RANK.get(t.priority, 2),
                t.issued_at if t.issued_at is not None else now,
                max(0.0, now - (t.issued_at if t.issued_at is not None else now)),
                True,
                k == target,
            )
            for k, t in waiting_tickets(day)
        ]

    def _arrivals(self, day: Day, now: float, below_rank: int) -> list[_Item]:
        """Expected future tickets of the classes that overtake rank `below_rank`, spread evenly
        (at (k - 1/2) / rate) until closing time or three hours ahead."""
        horizon = min(self._closing_ts(now), now + 3 * 3600.0)
        out = []
        for (service, rank), rate in self.arrival_rates(day, now).items():
            if rank >= below_rank or rate <= 0:
                continue
            k = 1
            while (at := now + (k - 0.5) / rate) < horizon:
                out.append(_Item(service, rank, at, 0.0, False))
                k += 1
        return out

    def _quick_estimate(
        self, hall_name: str, hall: Hall, day: Day, t: Ticket, now: float
    ) -> tuple[float | None, int]:
        """Queue-length estimate: the tickets ahead over the windows serving the service."""
        service = t.service or ""
        serving = [w for w in hall.windows.values() if w.state == "open" and service in w.services]
        if not serving:
            return None, 0
        hit = self._quick.get(hall_name)
        if hit is None or now - hit[0] > _QUICK_REFRESH_S:
            counts: dict[tuple[str, int], int] = {}
            for other in day.tickets.values():
                if other.status == WAITING and other.service:
                    k = (other.service, PRIORITY_RANK.get(other.priority, 2))
                    counts[k] = counts.get(k, 0) + 1
            hit = self._quick[hall_name] = (now, counts)
        else:
            # This ticket joined since the count was taken.
            k = (service, PRIORITY_RANK.get(t.priority, 2))
            hit[1][k] = hit[1].get(k, 0) + 1
        rank = PRIORITY_RANK.get(t.priority, 2)
        ahead = sum(n for (s, r), n in hit[1].items() if s == service and r <= rank) - 1
        ahead = max(0, ahead)
        cycle = self.law(service).mean + self.gap_s
        return quickwait.queue_wait(ahead, len(serving), cycle), ahead

    def _simulate_ticket(
        self, hall_name: str, hall: Hall, day: Day, ticket: str, t: Ticket, now: float
    ) -> tuple[float | None, int]:
        service = t.service or ""
        if not any(w.state == "open" and service in w.services for w in hall.windows.values()):
            return None, 0
        return self._estimate(
            self._windows(hall_name, hall, day, now),
            self._queue(day, now, ticket),
            PRIORITY_RANK.get(t.priority, 2),
            day,
            now,
            f"{hall_name}:{ticket}:{now}",
        )

    def wait_for_new(
        self,
        state: HallsState,
        hall: str,
        service: str,
        now: float,
        extra: Iterable[str] = (),
        samples: int | None = None,
    ) -> float | None:
        """The wait a normal ticket for `service` taken at `now` would face (None: no window).

        `extra` names the service of each additional window to assume open and idle;
        `samples` overrides the number of sampled runs (0: the mean-value run only).
        """
        h = state.halls.get(hall)
        if h is None:
            return None
        extra = list(extra)
        if not extra and not any(
            w.state == "open" and service in w.services for w in h.windows.values()
        ):
            return None
        day = state.day_at(h, now) or Day(day=state.business_day(now))
        queue = self._queue(day, now, None)
        queue.append(_Item(service, 2, now, 0.0, False, True))
        wins = self._windows(hall, h, day, now, extra)
        seed = f"{hall}:{service}:new:{now}"
        return self._estimate(wins, queue, 2, day, now, seed, samples)[0]

    # -- advice and metrics -----------------------------------------------------------------

    def advice(self, state: HallsState, hall: str, now: float) -> Advice:
        """Extra windows per service (backlog, arrivals) and the closing-time overrun."""
        h = state.halls.get(hall) or Hall()
        day = state.day_at(h, now) or Day(day=state.business_day(now))
        closing = self._closing_ts(now)
        services = sorted(
            {s for w in h.windows.values() for s in w.services}
            | {t.service for t in day.tickets.values() if t.service and t.status == WAITING}
        )
        rates = self.arrival_rates(day, now)
        by_service = {s: sum(r for (x, _), r in rates.items() if x == s) for s in services}
        theta = abandonment_rate(day, now)
        queue = self._queue(day, now, None)
        span = max(0.0, min(closing, now + 3 * 3600.0) - now)
        # Past SIM_MAX_ITEMS tickets to simulate, closed forms: a tick's cost stays bounded.
        quick = len(queue) + sum(rates.values()) * span > quickwait.SIM_MAX_ITEMS
        waiting: dict[str, int] = {}
        for it in queue:
            waiting[it.service] = waiting.get(it.service, 0) + 1
        out = []
        for s in services:
            cycle = self.law(s).mean + self.gap_s
            if quick:
                ahead = waiting.get(s, 0)
                serving = sum(
                    1 for w in h.windows.values() if w.state == "open" and s in w.services
                )
                wait = quickwait.queue_wait(ahead, serving, cycle)
                extra = quickwait.extra_windows(
                    ahead, serving, cycle, self.target_wait_s, self.max_extra_windows
                )
            else:
                wait, extra = self._search_extra(state, hall, s, now)
            share = _capacity_share(h, s, by_service)
            arrivals = staffing.extra_for_arrivals(
                by_service[s], cycle, share, self.target_wait_s, abandon_rate=theta
            )
            out.append(ServiceAdvice(s, waiting.get(s, 0), wait, extra, arrivals))
        windows = self._windows(hall, h, day, now)
        if quick:
            work = sum(self.law(it.service).mean + self.gap_s for it in queue)
            more = sum(r * span * (self.law(k[0]).mean + self.gap_s) for k, r in rates.items())
            clear = quickwait.finish_at(now, work, len(windows))
            projected = quickwait.finish_at(now, work + more, len(windows))
        else:
            clear = _finish(windows, queue, self._handling)
            projected = _finish(windows, queue + self._arrivals(day, now, 3), self._handling)
        return Advice(
            hall,
            now,
            self.target_wait_s,
            tuple(out),
            closing,
            clear,
            staffing.closing_overrun(clear, closing),
            staffing.closing_overrun(projected, closing),
        )

    def _search_extra(
        self, state: HallsState, hall: str, service: str, now: float
    ) -> tuple[float | None, int]:
        """A new ticket's wait, and the fewest extra windows that bring it under the target."""
        wait = self.wait_for_new(state, hall, service, now)
        extra = 0
        while extra < self.max_extra_windows and (wait is None or wait > self.target_wait_s):
            extra += 1
            # The search only needs the mean-value run: sampling each step would cost
            # up to max_extra_windows x samples runs per service on every tick.
            wait_k = self.wait_for_new(state, hall, service, now, [service] * extra, samples=0)
            if wait_k is not None and wait_k <= self.target_wait_s:
                break
        return wait, extra

    def metrics(
        self,
        state: HallsState,
        now: float,
        advice: Callable[[str], Advice | None] | None = None,
    ) -> list[Metric]:
        """Gauge families over the live state and what was learned (built afresh each scrape).

        `advice`, when given, supplies (cached) advice per hall instead of computing it here.
        """
        est = GaugeMetricFamily(
            "hallwatch_estimated_wait_seconds",
            "Estimated wait of a normal ticket taken now.",
            labels=["hall", "service"],
        )
        mae = GaugeMetricFamily(
            "hallwatch_estimate_mae_seconds",
            "Rolling mean absolute error of wait estimates (last 200 called tickets).",
            labels=["hall", "service"],
        )
        extra = GaugeMetricFamily(
            "hallwatch_staffing_extra_windows",
            "Extra windows needed to bring the wait under the target.",
            labels=["hall", "service", "goal"],
        )
        overrun = GaugeMetricFamily(
            "hallwatch_closing_overrun_seconds",
            "Extended hours the current queue needs past closing time (0 if none).",
            labels=["hall"],
        )
        offpeak = GaugeMetricFamily(
            "hallwatch_offpeak_wait_seconds",
            "Historical mean wait by weekday (0=Monday) and local hour of issue.",
            labels=["hall", "weekday", "hour"],
        )
        bias = GaugeMetricFamily(
            "hallwatch_estimate_bias_seconds",
            "Rolling mean of estimated minus actual wait (last 200 called tickets).",
            labels=["hall", "service"],
        )
        hist = HistogramMetricFamily(
            "hallwatch_estimate_error_seconds",
            "Absolute error of wait estimates, observed when the ticket is called.",
            labels=["hall", "service"],
        )
        for name in sorted(state.halls):
            adv = advice(name) if advice is not None else self.advice(state, name, now)
            if adv is None:
                continue
            for sa in adv.services:
                if sa.estimated_wait_s is not None:
                    est.add_metric([name, sa.service], sa.estimated_wait_s)
                extra.add_metric([name, sa.service, "backlog"], sa.extra_backlog)
                extra.add_metric([name, sa.service, "arrivals"], sa.extra_arrivals)
            overrun.add_metric([name], adv.closing_overrun_s)
            table = self.learned.waits.get(name)
            for wd, hour, mean, _ in table.cells() if table else ():
                offpeak.add_metric([name, str(wd), str(hour)], mean)
        for key, errs in sorted(self.learned.errors.items()):
            hall, service = key.split(_SEP, 1)
            mae.add_metric([hall, service], sum(abs(e) for e in errs) / len(errs))
            bias.add_metric([hall, service], sum(errs) / len(errs))
            h = self.learned.hist[key]
            buckets = [(_le(b), h[i]) for i, b in enumerate(ERROR_BUCKETS)]
            buckets.append(("+Inf", h[-1]))
            hist.add_metric([hall, service], buckets, h[-2])
        return [est, mae, bias, extra, overrun, offpeak, hist]


def _uniform(key: str) -> float:
    """A deterministic uniform in [0, 1) for `key` (common random numbers across scenarios);
    a keyed hash is ~10x cheaper than seeding a `random.Random` for a single draw."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _le(bound: float) -> str:
    return str(int(bound)) if bound == int(bound) else str(bound)


def _push(values: list[float], x: float, keep: int) -> None:
    values.append(x)
    if len(values) > keep:
        del values[: len(values) - keep]


def _fit(logs: list[float], base: LogNormal, weight: float) -> LogNormal:
    """Log-normal from log-samples, shrunk towards `base` with `weight` pseudo-samples."""
    n = len(logs)
    if n == 0:
        return base
    m = sum(logs) / n
    v = sum((x - m) ** 2 for x in logs) / n
    mu = (n * m + weight * base.mu) / (n + weight)
    var = (n * v + weight * base.sigma**2) / (n + weight)
    return LogNormal(mu, math.sqrt(var))


def _isotonic(points: list[tuple[float, float]]) -> list[float]:
    """Weighted pool-adjacent-violators: the closest non-decreasing sequence."""
    blocks: list[list[float]] = []  # [value, weight, count]
    for value, weight in points:
        blocks.append([value, weight, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out: list[float] = []
    for value, _, count in blocks:
        out.extend([value] * int(count))
    return out


def _capacity_share(hall: Hall, service: str, load: dict[str, float]) -> float:
    """Open windows' capacity for `service`, a shared window split by its services' loads."""
    share = 0.0
    for w in hall.windows.values():
        if w.state != "open" or service not in w.services:
            continue
        total = sum(load.get(s, 0.0) for s in w.services)
        share += load.get(service, 0.0) / total if total > 0 else 1.0 / len(w.services)
    return share


def _residual_draw(law: LogNormal, served: float, u: float) -> float:
    """S - a for S ~ law conditioned on S > a, by inverse CDF at `u`."""
    lo = _phi((math.log(served) - law.mu) / law.sigma) if served > 0 else 0.0
    p = min(max(lo + u * (1.0 - lo), 1e-12), 1.0 - 1e-12)
    return max(0.0, math.exp(law.mu + law.sigma * _NORMAL.inv_cdf(p)) - served)


def _survival(w: _Win, t: float) -> float:
    """P(window `w` makes its next call more than `t` seconds from now)."""
    if w.law is None:
        return 1.0 if t < w.free else 0.0
    x = t - w.gap
    if x <= 0.0:
        return 1.0
    law, a = w.law, w.served
    tail = law.survival(a)
    if tail < 1e-12:  # far in the tail: the residual is all but certain
        rest = 1.0 if x < law.residual(a) else 0.0
    else:
        rest = min(1.0, law.survival(a + x) / tail)
    if w.p_recall <= 0.0:
        return rest
    return w.p_recall * (1.0 if t < w.recall_left + w.gap else 0.0) + (1.0 - w.p_recall) * rest


def _clear_quantile(
    wins: list[_Win], items: list[_Item], target: _Item, now: float, q: float
) -> tuple[float, bool] | None:
    """The q-quantile of the target's wait if it were called by the first *clear* window
    (serving its service, and with no queued ticket it would call first) to make its next
    call: the minimum of independent next-call times, whose survival is the product of
    theirs. Without overtaking arrivals that call is never later, so this bounds the wait;
    the flag says whether every window serving the service is clear (then it is the wait).
    None: no clear window."""
    key = (target.rank, target.issued_at)
    ahead = [
        it.service for it in items if it.real and not it.target and (it.rank, it.issued_at) <= key
    ]
    clear, every = [], True
    for w in wins:
        if target.service not in w.services:
            continue
        if any(s in w.services for s in ahead):
            every = False
        else:
            clear.append(
                _Win(
                    w.name,
                    w.services,
                    w.free - now,
                    w.law,
                    w.served,
                    w.p_recall,
                    w.recall_left,
                    w.gap,
                )
            )  # times from now
    if not clear:
        return None
    stop = 1.0 - q

    def surv(t: float) -> float:
        out = 1.0
        for w in clear:
            out *= _survival(w, t)
            if out <= stop:
                break
        return out

    if surv(0.0) <= stop:
        return 0.0, every
    hi = max(60.0, min(w.free for w in clear))
    while surv(hi) > stop:
        hi *= 2.0
        if hi > 7 * 86400.0:
            return None
    lo = 0.0
    while hi - lo > 0.05:
        mid = 0.5 * (lo + hi)
        if surv(mid) > stop:
            lo = mid
        else:
            hi = mid
    return hi, every


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile of `values` by linear interpolation (q = 0.5: the median)."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    i = int(pos)
    return xs[i] if i + 1 >= len(xs) else xs[i] + (xs[i + 1] - xs[i]) * (pos - i)


def _poisson(
    rates: list[tuple[tuple[str, int], float]], now: float, horizon: float, rng: random.Random
) -> list[_Item]:
    out = []
    for (service, rank), rate in rates:
        if rate <= 0:
            continue
        t = now + rng.expovariate(rate)
        while t < horizon:
            out.append(_Item(service, rank, t, 0.0, False))
            t += rng.expovariate(rate)
    return out


def _run(
    frees: list[float], wins: list[_Win], items: list[_Item], handling: _Handling
) -> tuple[float | None, int]:
    """Run the calling rules until the target is called: (its call time, real tickets before)."""
    result: list[float] = []
    position = _simulate(frees, wins, items, handling, stop_at_target=True, out=result)
    return (result[0] if result else None), position


def _finish(wins: list[_Win], items: list[_Item], handling: _Handling) -> float | None:
    """When the last of `items` a window can serve has been served (None: nothing to serve)."""
    if not items:
        return None
    result: list[float] = []
    _simulate([w.free for w in wins], wins, items, handling, stop_at_target=False, out=result)
    return max(result) if result else None


def _simulate(
    frees: list[float],
    wins: list[_Win],
    items: list[_Item],
    handling: _Handling,
    *,
    stop_at_target: bool,
    out: list[float],
) -> int:
    """Windows call by the contract's rules; `handling` gives each call's duration (None: the
    ticket was cancelled before its turn and the window calls the next one at once)."""
    queues: dict[tuple[str, int], deque[_Item]] = {}
    for it in sorted(items, key=lambda i: i.issued_at):
        queues.setdefault((it.service, it.rank), deque()).append(it)
    heap = [(free, i) for i, free in enumerate(frees)]
    heapq.heapify(heap)
    position = 0
    ends: list[float] = []
    while heap:
        t, i = heapq.heappop(heap)
        services = wins[i].services
        best: _Item | None = None
        best_q: deque[_Item] | None = None
        for rank in range(3):
            for s in services:
                q = queues.get((s, rank))
                if q and q[0].issued_at <= t and (best is None or q[0].issued_at < best.issued_at):
                    best, best_q = q[0], q
            if best is not None:
                break
        if best is None or best_q is None:
            nxt = [q[0].issued_at for (s, _), q in queues.items() if q and s in services]
            if nxt:
                heapq.heappush(heap, (max(min(nxt), t), i))
            continue
        best_q.popleft()
        if best.target and stop_at_target:
            out.append(t)
            return position
        dur = handling(best, t)
        if dur is None:
            heapq.heappush(heap, (t, i))
            continue
        position += best.real
        if best.real:
            ends.append(t + dur)
        heapq.heappush(heap, (t + dur, i))
    if not stop_at_target:
        out.extend(ends)
    return position
