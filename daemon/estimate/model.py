"""The wait estimator: learns from events, estimates issued tickets' waits, advises on staffing.

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

This module holds the `Estimator` (learning from events, its published records); the laws it fits
are in `laws`, the estimates in `forecast` over the `simulation`, advice in `advice`, its
Prometheus families in `export`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from hallwatch.daemon.core.hours import Timetable
from hallwatch.daemon.core.state import (
    COMPLETED,
    NO_SHOW,
    WAITING,
    Day,
    Hall,
    HallsState,
    Ticket,
    waiting_tickets,
)
from hallwatch.daemon.estimate import interval, ranges
from hallwatch.daemon.estimate.advice import Advice, Steps, advise_steps, run_steps
from hallwatch.daemon.estimate.export import metric_families
from hallwatch.daemon.estimate.forecast import Forecaster
from hallwatch.daemon.estimate.laws import PATIENCE_S, Priors
from hallwatch.daemon.estimate.learned import (
    AGE_BIN_S,
    AGE_BINS,
    ERROR_BUCKETS,
    SEP,
    Learned,
    Pending,
    decode_snapshot,
    encode_snapshot,
    push,
)
from hallwatch.daemon.estimate.offpeak import WaitTable
from hallwatch.daemon.estimate.quickwait import SIM_MAX_ITEMS
from hallwatch.daemon.estimate.reestimate import Track, call_times, moved
from hallwatch.sensors.events import Event, SystemEvent, TicketEvent, WindowEvent
from prometheus_client.core import Metric

# The estimator's surface: the class and the records it returns (`Advice` is defined in `advice`).
_KEEP_SERVICE = 120  # completions per service the fit uses: recent enough to follow slow-downs
_KEEP_ERRORS = 200


@dataclass(frozen=True, slots=True)
class EstimateOut:
    """Published on `{root}/{hall}/estimate` for an issued ticket (and again, `revision` > 0,
    when its forecast moved); `p10_s`/`p90_s` bound the wait in eight cases out of ten."""

    hall: str
    ticket: str
    service: str
    priority: str
    position: int
    estimated_wait_s: float | None
    at: float
    p10_s: float | None = None
    p90_s: float | None = None
    revision: int = 0


@dataclass(frozen=True, slots=True)
class ErrorOut:
    """A remembered estimate met its outcome: the ticket was called."""

    hall: str
    service: str
    estimated_wait_s: float
    actual_wait_s: float


class Estimator(Forecaster):
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
        prior_patience_s: float | None = PATIENCE_S,
        rate_window_s: float = 3600.0,
        max_extra_windows: int = 10,
        samples: int = 32,
        quantile: float = 0.5,
        shrink: float = 2.0,
        reestimate_threshold_s: float = 120.0,
        reestimate_every_s: float = 60.0,
        learned: Learned | None = None,
        hours: Timetable | None = None,
    ) -> None:
        if target_wait_s <= 0:
            raise ValueError(f"target_wait_s: must be > 0, got {target_wait_s}")
        if prior_patience_s is not None and prior_patience_s <= 0:
            raise ValueError(f"prior_patience_s: must be > 0 or None, got {prior_patience_s}")
        if min(prior_service_s, prior_recall_s, prior_pause_s, rate_window_s) <= 0:
            raise ValueError(
                "prior_service_s, prior_recall_s, prior_pause_s, rate_window_s: must be > 0"
            )
        super().__init__(
            tz=tz,
            closing=closing,
            rate_window_s=rate_window_s,
            samples=samples,
            quantile=quantile,
            learned=learned,
            priors=Priors(
                prior_service_s,
                prior_sigma,
                prior_recall_s,
                prior_gap_s,
                prior_pause_s,
                shrink,
                prior_patience_s,
            ),
            hours=hours,
        )
        self.target_wait_s = target_wait_s
        self.max_extra_windows = max_extra_windows
        self.quick = False  # the daemon is behind: queue-length estimates (see `Forecaster`)
        self._issued_since_prune = 0
        self._bands: dict[str, interval.Band] = {}
        self._zbands: dict[str, interval.Band] = {}
        # Re-estimates (`reestimate`): tracked tickets per hall, and each hall's last pass.
        self.reestimate_threshold_s = reestimate_threshold_s
        self.reestimate_every_s = reestimate_every_s
        self._tracks: dict[str, dict[str, Track]] = {}
        self._last_pass: dict[str, float] = {}
        self._down_at: dict[str, float] = {}  # hall/system -> when it went down
        self._back_at: dict[str, float] = {}  # hall -> when its last outage ended

    # -- persistence ------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        return encode_snapshot(self.learned)

    @classmethod
    def restore(cls, blob: bytes, **kw: object) -> Estimator:
        """An estimator with the learned data of `blob`; a fresh one if it cannot be read."""
        return cls(learned=decode_snapshot(blob), **kw)  # type: ignore[arg-type]

    # -- events -----------------------------------------------------------------------------

    def on_event(self, event: Event, state: HallsState) -> list[EstimateOut | ErrorOut]:
        """Learn from one applied event; an estimate for `issued`, an error for `called`."""
        if isinstance(event, WindowEvent):
            self._on_window(event)
            return []
        if isinstance(event, SystemEvent):
            self._on_system(event)
            return []
        if not isinstance(event, TicketEvent):
            return []
        hall = state.halls.get(event.hall)
        day = hall.today if hall else None
        if hall is None or day is None or day.day != state.business_day(event.ts):
            return []  # not today's ticket (the lane ran behind across midnight): nothing to learn
        t = day.tickets.get(event.ticket)
        key = f"{event.hall}{SEP}{event.ticket}"
        L = self.learned
        if t is None:
            return []  # a ticket the state did not take: nothing to estimate or learn
        if event.type == "issued":
            out = self._on_issued(event, hall, day, t, key)
            return [out] if out is not None else []
        if event.type == "called" and t.called_at == event.ts:
            since = (t.issued_at or event.ts) - interval.AFTER_OUTAGE_S  # back since: no outage
            outs = self._on_called(event, t, key, self._outage(event.hall, hall, since))
            if t.ended_at is not None and t.status in (COMPLETED, NO_SHOW):
                # Its end came first (a late call on the wire): learn the service now.
                self._on_end(event.hall, hall, t, key, t.window)
            return (
                outs + self._reestimate(event.hall, hall, day, event.ts) if not self.quick else outs
            )
        if (
            event.type in ("completed", "no_show")
            and t.called_at is not None
            and t.ended_at == event.ts
        ):
            # Only an end that took effect (not a second one, nor one before the call).
            self._on_end(event.hall, hall, t, key, event.window or t.window)
        elif event.type in ("cancelled", "transferred"):
            L.cancelled += event.type == "cancelled"
            L.pending.pop(key, None)
            if L.forecasts:
                L.forecasts.pop(key, None)
            if L.spreads:
                L.spreads.pop(key, None)
        return []

    def _on_end(self, hall_name: str, hall: Hall, t: Ticket, key: str, window: str | None) -> None:
        """A called ticket ended (`t.ended_at`): its age bin, its service or recall time, and
        when its window was done."""
        L = self.learned
        assert t.called_at is not None and t.ended_at is not None
        dur = t.ended_at - t.called_at
        no_show = t.status == NO_SHOW
        age = L.call_age.pop(key, None)
        if age is not None:
            b = L.age_bins[min(int(age // AGE_BIN_S), AGE_BINS - 1)]
            b[0] += 1
            b[1] += no_show
            self._q = None  # the no-show curve is fitted to these bins: fit it again
        if not no_show and t.service and dur > 0:
            self._learn_service(hall, t.service, t.called_at, dur)
        elif no_show:
            L.no_shows += 1
            self._q = None
            if dur >= 0:
                push(L.recall, dur, 50)
        if window:
            wkey = f"{hall_name}{SEP}{window}"
            L.last_end[wkey] = max(t.ended_at, L.last_end.get(wkey, t.ended_at))

    def _learn_service(self, hall: Hall, service: str, called_at: float, dur: float) -> None:
        """A completed service: its time for the service's law, or, when a business system was
        down during it, its slow-down for `slow_factor` (not to slow the law after the outage)."""
        L = self.learned
        if any(s.state != "up" or s.since > called_at for s in hall.systems.values()):
            slow = L.slow or []
            push(slow, math.log(dur) - self.law(service).mu, 100)
            L.slow, self._slow = slow, None
            return
        push(L.service_logs.setdefault(service, []), math.log(dur), _KEEP_SERVICE)
        self._laws = None

    def _on_window(self, ev: WindowEvent) -> None:
        L, key = self.learned, f"{ev.hall}{SEP}{ev.window}"
        if ev.state == "paused":
            L.paused_at.setdefault(key, ev.ts)
        else:
            since = L.paused_at.pop(key, None)
            # A pause across the night is the hall closed, not a break in service.
            if ev.state == "open" and since is not None and 0 < ev.ts - since < 4 * 3600:
                push(L.pauses, ev.ts - since, 50)
                self._pause_law = None

    def _on_system(self, ev: SystemEvent) -> None:
        """An outage's length (down to back up or degraded), for `outage_law`."""
        key = f"{ev.hall}{SEP}{ev.system}"
        if ev.state == "down":
            self._down_at.setdefault(key, ev.ts)
            return
        since = self._down_at.pop(key, None)
        if since is not None:
            self._back_at[ev.hall] = ev.ts
        if since is not None and 0 < ev.ts - since < 12 * 3600:
            outages = self.learned.outages or []
            push(outages, ev.ts - since, 20)
            self.learned.outages, self._outage_law = outages, None

    def _outage(self, hall_name: str, hall: Hall, since: float) -> bool:
        """Whether a business system of the hall is down, or came back after `since`."""
        down = any(s.state != "up" for s in hall.systems.values())
        return down or self._back_at.get(hall_name, -math.inf) > since

    def _on_issued(
        self, ev: TicketEvent, hall: Hall, day: Day, t: Ticket, key: str
    ) -> EstimateOut | None:
        service = t.service or ev.service or ""
        if t.status != WAITING:  # its call overtook its issue on the wire
            return EstimateOut(ev.hall, ev.ticket, service, t.priority, 0, 0.0, ev.ts, 0.0, 0.0)
        if t.first_issued_at is not None and t.first_issued_at != ev.ts:
            return None  # a second `issued` for the same ticket (another id): already estimated
        if self.quick:
            forecast, position = self.quick_estimate(ev.hall, hall, day, t, ev.ts)
        else:
            forecast, position = self.simulate_ticket(ev.hall, hall, day, ev.ticket, t, ev.ts)
        spread = None if self.quick else self.last_spread
        outage = self._outage(ev.hall, hall, ev.ts - interval.AFTER_OUTAGE_S)
        est, lo, hi = self.calibrated(ev.hall, forecast, outage, spread)
        L = self.learned
        # Tickets never called (the hall closed, an event lost) must not pile up forever.
        self._issued_since_prune += 1
        if self._issued_since_prune >= 500:
            self._issued_since_prune = 0
            for k in [k for k, p in L.pending.items() if p.issued_at < ev.ts - 86400.0]:
                del L.pending[k]
            if L.forecasts:
                L.forecasts = {k: f for k, f in L.forecasts.items() if k in L.pending}
            if L.spreads:
                L.spreads = {k: s for k, s in L.spreads.items() if k in L.pending}
        while len(L.call_age) > 5000:
            del L.call_age[next(iter(L.call_age))]
        if not self.quick:  # the accuracy metrics judge the estimator, not its fallback
            L.pending[key] = Pending(service, est, t.issued_at or ev.ts)
            mean_call = self.last_mean_call
            if est is not None and lo is not None and hi is not None and mean_call is not None:
                tracks = self._tracks.setdefault(ev.hall, {})
                tracks[ev.ticket] = Track(mean_call, ev.ts + est, est - lo, hi - est)
            if forecast is not None:
                if not L.forecasts:
                    L.forecasts = {}
                L.forecasts[key] = forecast
                if spread is not None and interval.learns(forecast):
                    if not L.spreads:
                        L.spreads = {}
                    L.spreads[key] = list(spread)
        return EstimateOut(ev.hall, ev.ticket, service, t.priority, position, est, ev.ts, lo, hi)

    def _reestimate(
        self, hall_name: str, hall: Hall, day: Day, now: float
    ) -> list[EstimateOut | ErrorOut]:
        """New estimates for the tracked tickets whose forecast moved (see `reestimate`)."""
        tracks = self._tracks.get(hall_name)
        if not tracks or now - self._last_pass.get(hall_name, -1e18) < self.reestimate_every_s:
            return []
        self._last_pass[hall_name] = now
        waiting = waiting_tickets(day)
        keep = {k for k, _ in waiting}
        for k in [k for k in tracks if k not in keep]:
            del tracks[k]
        items = self.queue_items(day, now, None)
        arrivals = self.arrivals(day, now, 2)
        if not tracks or len(items) + len(arrivals) > SIM_MAX_ITEMS:
            return []
        for i, it in enumerate(items):
            it.idx = i
        calls = call_times(
            self.windows_at(hall_name, hall, day, now), items + arrivals, self.handling
        )
        order = sorted(calls.values())
        outs: list[EstimateOut | ErrorOut] = []
        outage = self._outage(hall_name, hall, now - interval.AFTER_OUTAGE_S)
        for i, (k, t) in enumerate(waiting):
            track, call = tracks.get(k), calls.get(i)
            if track is None or call is None:
                continue
            wait = moved(track, call, now, self.reestimate_threshold_s)
            if wait is None:
                continue
            track.mean_call, track.published_call = call, now + wait
            track.revision += 1
            # The range: the band's for the wait left, or the range moved with the
            # estimate, whichever is wider (a moved forecast is no more certain than it was).
            _, lo, hi = self._band(hall_name, wait, outage).apply(wait)
            lo, hi = max(0.0, min(lo, wait - track.below)), max(hi, wait + track.above)
            position = sum(1 for c in order if c < call)
            outs.append(
                EstimateOut(
                    hall_name,
                    k,
                    t.service or "",
                    t.priority,
                    position,
                    wait,
                    now,
                    lo,
                    hi,
                    track.revision,
                )
            )
        return outs

    def _on_called(
        self, ev: TicketEvent, t: Ticket, key: str, outage: bool
    ) -> list[EstimateOut | ErrorOut]:
        L = self.learned
        end = L.last_end.get(f"{ev.hall}{SEP}{ev.window}")
        if end is not None and t.issued_at is not None and t.issued_at < end <= ev.ts:
            if ev.ts - end <= 120.0:  # the window had work waiting: a pure turnaround gap
                push(L.gaps, ev.ts - end, 100)
        if t.issued_at is None:
            return []
        actual = ev.ts - t.issued_at
        L.call_age[key] = actual
        L.waits.setdefault(ev.hall, WaitTable()).add(t.issued_at, actual, self.zone)
        p = L.pending.pop(key, None)
        forecast = L.forecasts.pop(key, None) if L.forecasts else None
        spread = L.spreads.pop(key, None) if L.spreads else None
        if p is None or p.estimate is None:
            return []
        err = p.estimate - actual
        if forecast is not None and interval.learns(forecast):
            if not L.resid:
                L.resid = {}
            bkey = interval.key(f"{ev.hall}{SEP}", forecast, outage)
            push(L.resid.setdefault(bkey, []), interval.residual(forecast, actual), interval.KEEP)
            self._bands.pop(bkey, None)
            self._bands.pop(interval.key(f"{ev.hall}{SEP}", forecast, True), None)
            if spread is not None:
                ranges.learn(L, self._zbands, ev.hall, forecast, actual, spread)
        ekey = f"{ev.hall}{SEP}{p.service}"
        push(L.errors.setdefault(ekey, []), err, _KEEP_ERRORS)
        h = L.hist.setdefault(ekey, [0.0] * (len(ERROR_BUCKETS) + 2))
        for i, bound in enumerate(ERROR_BUCKETS):
            if abs(err) <= bound:
                h[i] += 1
        h[-2] += abs(err)
        h[-1] += 1
        return [ErrorOut(ev.hall, p.service, p.estimate, actual)]

    # -- accuracy, advice and metrics -------------------------------------------------------

    def calibrated(
        self,
        hall: str,
        forecast: float | None,
        outage: bool = False,
        spread: tuple[float, float] | None = None,
    ) -> tuple[float | None, float | None, float | None]:
        """(estimate, p10, p90) of a wait the simulation forecast at `forecast` seconds in
        `hall` (see `interval`): corrected and ranged by how its past forecasts met their calls
        (`outage`: those during a system outage and the half hour after, see `interval.key`);
        with the runs' `spread` (their 10th and 90th percentiles), ranged by it (`ranges`)."""
        if forecast is None:
            return None, None, None
        est, lo, hi = self._band(hall, forecast, outage).apply(forecast)
        if spread is None or not interval.learns(forecast):
            return est, lo, hi
        lo, hi = ranges.ranged(self.learned, self._zbands, hall, forecast, spread, est)
        return est, lo, hi

    def _band(self, hall: str, forecast: float, outage: bool = False) -> interval.Band:
        if not interval.learns(forecast):
            return interval.ZERO
        key = interval.key(f"{hall}{SEP}", forecast, outage)
        band = self._bands.get(key)
        if band is None:
            resid = self.learned.resid.get(key) if self.learned.resid else None
            # An outage's residuals are shrunk to the hall's ordinary band (the prior's).
            prior = (
                self._band(hall, forecast) if outage else interval.PRIORS[interval.bucket(forecast)]
            )
            ev = interval.EVIDENCE[interval.bucket(forecast)]
            band = self._bands[key] = interval.band(resid, prior, ev, counted=not outage)
        return band

    def rolling_mae(self, hall: str, service: str) -> float | None:
        """Mean absolute error of the last estimates for this service that met their call."""
        errs = self.learned.errors.get(f"{hall}{SEP}{service}")
        return sum(abs(e) for e in errs) / len(errs) if errs else None

    def advice(self, state: HallsState, hall: str, now: float) -> Advice:
        """Extra windows per service (backlog, arrivals) and the closing-time overrun."""
        return run_steps(self.advice_steps(state, hall, now))

    def advice_steps(self, state: HallsState, hall: str, now: float) -> Steps:
        """`advice`, a forward simulation a step (advice.py `advise_steps`)."""
        return advise_steps(self, state, hall, now, self.target_wait_s, self.max_extra_windows)

    def metrics(
        self,
        state: HallsState,
        now: float,
        advice: Callable[[str], Advice | None] | None = None,
    ) -> list[Metric]:
        """Gauge families over the live state and what was learned (built afresh each scrape).

        `advice`, when given, supplies (cached) advice per hall instead of computing it here.
        """
        if advice is None:
            return metric_families(
                self.learned, state, now, lambda name: self.advice(state, name, now)
            )
        return metric_families(self.learned, state, now, advice)
