"""Per-ticket wait estimates: the hall as the simulation sees it, sampled runs, quick mode."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from hallwatch.daemon.core.hours import Hours, Timetable
from hallwatch.daemon.core.state import WAITING, Day, Hall, HallsState, Ticket, waiting_tickets
from hallwatch.daemon.estimate import quickwait
from hallwatch.daemon.estimate.laws import OUTAGE_S, OUTAGE_SIGMA, Laws, Priors
from hallwatch.daemon.estimate.learned import SEP, Learned
from hallwatch.daemon.estimate.lognormal import LogNormal, residual_draws
from hallwatch.daemon.estimate.lunch import day_turns, waits_out_a_turn
from hallwatch.daemon.estimate.simulation import (
    Classes,
    Item,
    Win,
    clear_quantile,
    poisson_arrivals,
    quantile_of,
    run_to_target,
    uniform,
)
from hallwatch.sensors.events import PRIORITY_RANK

_QUICK_REFRESH_S = 5.0
_SAMPLE_BUDGET = 8000  # queue items simulated per estimate, over all its sampled runs


def _quantile(clear: tuple[float, bool] | None, sampled: float) -> float:
    return sampled if clear is None else clear[0]


def outage_end(hall: Hall, now: float, law: LogNormal | None = None) -> float | None:
    """When a business system now down is expected back (None: none is down): the median
    outage length of `law` (the hall's past outages, half an hour before it saw one) after it
    went down, and never sooner than ten minutes from now."""
    since = [s.since for s in hall.systems.values() if s.state == "down"]
    if not since:
        return None
    law = law or PRIOR_OUTAGE
    return now + max(600.0, min(since) + math.exp(law.mu) - now)


PRIOR_OUTAGE = LogNormal(math.log(OUTAGE_S), OUTAGE_SIGMA)


class Forecaster(Laws):
    """Wait estimates by forward simulation over the live state, with the fitted laws."""

    def __init__(
        self,
        *,
        tz: str,
        closing: str,
        rate_window_s: float,
        samples: int,
        quantile: float,
        learned: Learned | None,
        priors: Priors,
        hours: Timetable | None = None,
    ) -> None:
        super().__init__(learned, priors)
        self.tz, self.zone = tz, ZoneInfo(tz)
        self.closing = time.fromisoformat(closing)
        # Each hall's closing (`[hours]`); `closing` for a hall it does not name.
        self.hours = hours or Timetable(Hours(close=self.closing))
        self.rate_window_s = rate_window_s
        self.samples = samples
        self.quantile = quantile
        # Overtaking arrivals projected: the day's rate of each class so far, times
        # `rate_scale`; for a service only one window serves, times `rate_scale_lone` and moved
        # along the hall's arrival curve (its last hour over its day, at most `rate_curve_max`).
        # Fitted on the development families of `sensors.scenarios` (estimate_seeds.json): the
        # last hour's rate of each class alone overestimated the overtaking where green-channel
        # customers are many (issue #17); at a lone window facing an afternoon peak, 0.6 of the
        # day's rate underestimated it (fifth round). The curve and a larger share at shared
        # windows too helped the green and blend families but cost weekday, surge and outage.
        self.rate_scale = 0.6
        self.rate_scale_lone = 1.0
        self.rate_curve_max = 3.0
        self.last_mean_call: float | None = None  # of the last `_estimate`'s mean-value run
        # The 10th and 90th percentiles of the last `_estimate`'s sampled runs (`ranges`);
        # None when it had none (the mean-value run only, or the queue-length fallback).
        self.last_spread: tuple[float, float] | None = None
        # Quick mode (`quick`, set by the daemon while it is behind, e.g. a flood of tickets):
        # an issued ticket gets a queue-length estimate from a per-hall count refreshed every
        # few seconds, instead of a forward simulation over the whole queue.
        self._quick: dict[str, tuple[float, dict[tuple[str, int], int]]] = {}
        self._lunch_cache: dict[tuple[str, date], dict[str, tuple[tuple[float, float], ...]]] = {}

    def lunch_turns(self, hall_name: str, now: float) -> dict[str, tuple[tuple[float, float], ...]]:
        """Each window's lunch turns (`[hours]` lunch rotation) today that have not ended by
        `now`, as [start, end) epoch seconds, sorted and merged."""
        slots = self.hours.for_hall(hall_name).lunch
        if not slots:
            return {}
        day = datetime.fromtimestamp(now, self.zone).date()
        key = (hall_name, day)
        hit = self._lunch_cache.get(key)
        if hit is None:
            hit = day_turns(slots, day, self.zone)
            if len(self._lunch_cache) > 256:
                self._lunch_cache.clear()
            self._lunch_cache[key] = hit
        return {w: spans for w, spans in hit.items() if spans[-1][1] > now}

    def window_at(
        self,
        hall_name: str,
        hall: Hall,
        day: Day,
        name: str,
        now: float,
        lunch: dict[str, tuple[tuple[float, float], ...]] | None = None,
    ) -> Win | None:
        """A window as the simulation sees it, or None if it is closed. `lunch`: the hall's
        `lunch_turns` (None: looked up here)."""
        w = hall.windows[name]
        key = f"{hall_name}{SEP}{name}"
        services = tuple(sorted(set(w.services)))
        if lunch is None:
            lunch = self.lunch_turns(hall_name, now)
        away = tuple(span for span in lunch.get(name, ()) if span[1] > now)
        if w.state == "paused" and away and away[0][0] <= now:
            # Paused in its lunch turn: back when the turn ends, not after a usual pause.
            return Win(name, services, away[0][1], away=away[1:])
        if w.state == "paused":
            # Back after the residual pause E[P - a | P > a]: a window paused longer than the
            # usual pause is not about to return "now", it is on an unusually long one.
            since = self.learned.paused_at.get(key, w.since)
            a = max(0.0, now - since)
            law = self.pause_law
            return Win(name, services, now + law.residual(a), law, a, away=away)
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
            return Win(
                name,
                services,
                now + rest + self.gap_s,
                law,
                a,
                p,
                max(0.0, recall - a),
                self.gap_s,
                away,
            )
        end = self.learned.last_end.get(key)
        free = max(now, end + self.gap_s) if end is not None else now
        return Win(name, services, free, away=away)

    def windows_at(
        self, hall_name: str, hall: Hall, day: Day, now: float, extra: Iterable[str] = ()
    ) -> list[Win]:
        out = []
        lunch = self.lunch_turns(hall_name, now)
        for name in sorted(hall.windows):
            win = self.window_at(hall_name, hall, day, name, now, lunch)
            if win is not None:
                out.append(win)
        out.extend(Win(f"+{i}", (s,), now) for i, s in enumerate(extra))
        return out

    def _sample_frees(
        self,
        wins: list[Win],
        now: float,
        seed: str,
        strata: list[list[int]],
        r: int,
        draws: list[Callable[[float], float] | None],
    ) -> list[float]:
        """Random next-call times of the windows in run `r`: residual services drawn from
        S | S > a (pauses from P | P > a), each within its stratum of `strata`; `draws` holds
        each window's `residual_draws` (None: no law, the window calls at `free`)."""
        out = []
        n = len(strata[0]) if strata else 1
        for k, w in enumerate(wins):
            draw = draws[k]
            if draw is None:
                out.append(w.free)
                continue
            u = (strata[k][r] + uniform(f"{seed}:{r}:{w.name}")) / n
            if u < w.p_recall:
                out.append(now + w.recall_left + w.gap)
            else:
                u = (u - w.p_recall) / (1.0 - w.p_recall)
                out.append(now + draw(u) + w.gap)
        return out

    def _estimate(
        self,
        wins: list[Win],
        items: list[Item],
        below_rank: int,
        day: Day,
        now: float,
        seed: str,
        samples: int | None = None,
        hall: str = "",
    ) -> tuple[float | None, int]:
        """Median call time of the target over `samples` random runs, and its position; past
        `quickwait.SIM_MAX_ITEMS` tickets to run, the queue-length estimate instead."""
        self.last_mean_call = self.last_spread = None
        serving: dict[str, int] = {}
        for w in wins:
            for sv in w.services:
                serving[sv] = serving.get(sv, 0) + 1
        expected = self._expected_arrivals(day, now, below_rank, hall, serving)
        if len(items) + expected > quickwait.SIM_MAX_ITEMS:
            return self._queue_length(wins, items)
        for i, it in enumerate(items):
            it.idx = i
        called, position = run_to_target(
            [w.free for w in wins],
            wins,
            items + self.arrivals(day, now, below_rank, hall, serving),
            self.handling,
        )
        self.last_mean_call = called  # the re-estimates' baseline (`reestimate`)
        # Sampling costs samples x queue length; a flood of tickets (or a hostile device) must
        # not stall the daemon, so long queues get fewer runs, down to the mean-value run.
        samples = self.samples if samples is None else samples
        samples = min(samples, _SAMPLE_BUDGET // max(1, len(items)))
        if called is None or samples <= 0:
            return (None if called is None else max(0.0, called - now)), position
        rates = [
            (k, r) for k, r in self.overtaking_rates(day, now, serving).items() if k[1] < below_rank
        ]
        horizon = min(self.closing_ts(now, hall), now + 3 * 3600.0)
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
        residuals = [None if w.law is None else residual_draws(w.law, w.served) for w in wins]
        classes = Classes(items, now)
        for r in range(samples):
            rng = random.Random(f"{seed}:{r}")
            arrivals = poisson_arrivals(rates, now, horizon, f"{seed}:{r}:arrivals", len(items))
            frees = self._sample_frees(wins, now, seed, strata, r, residuals)
            queues = classes.with_arrivals(arrivals)
            t, _ = run_to_target(frees, wins, queues, self.sampler(rng))
            if t is not None:
                waits.append(max(0.0, t - now))
        if not waits:
            return None, position
        wait = quantile_of(waits, self.quantile)
        lo, hi = quantile_of(waits, 0.1), quantile_of(waits, 0.9)
        target = next((it for it in items if it.target), None)
        if target is not None:
            clear = clear_quantile(wins, items, target, now, self.quantile)
            if clear is not None:
                bound, exact = clear
                if not (rates and waits_out_a_turn(wins, target.service, now + bound)):
                    wait = bound if exact else min(wait, bound)
                    if exact:  # the runs' spread, exactly (as the median): the first call's law
                        lo = _quantile(clear_quantile(wins, items, target, now, 0.1), lo)
                        hi = _quantile(clear_quantile(wins, items, target, now, 0.9), hi)
        self.last_spread = (min(lo, wait), max(hi, wait))
        return wait, position

    def _queue_length(self, wins: list[Win], items: list[Item]) -> tuple[float | None, int]:
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

    def _expected_arrivals(
        self,
        day: Day,
        now: float,
        below_rank: int,
        hall: str = "",
        serving: dict[str, int] | None = None,
    ) -> float:
        """How many overtaking tickets (rank below `below_rank`) `_arrivals` would add."""
        span = max(0.0, min(self.closing_ts(now, hall), now + 3 * 3600.0) - now)
        return sum(
            r * span
            for (_, rank), r in self.overtaking_rates(day, now, serving).items()
            if rank < below_rank
        )

    def closing_ts(self, now: float, hall: str = "") -> float:
        """Today's closing time of `hall` (`[hours]`), epoch seconds."""
        local = datetime.fromtimestamp(now, self.zone)
        closing = self.hours.for_hall(hall).close
        return datetime.combine(local.date(), closing, self.zone).timestamp()

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

    def overtaking_rates(
        self, day: Day, now: float, serving: dict[str, int] | None = None
    ) -> dict[tuple[str, int], float]:
        """Arrivals per second by (service, class rank) to project into a ticket's future: each
        class's rate over the day so far (a handful of green tickets in the last hour is a noisy
        rate), times `rate_scale`. For a service only one of the simulated windows serves
        (`serving`: how many serve each service; None: none is taken for lone), where every
        overtaking arrival delays the tickets behind it by a whole service: times
        `rate_scale_lone`, and moved along the hall's arrival curve by the hall's own last
        `rate_window_s` over its day (every class together: enough tickets to tell an afternoon
        peak from the morning)."""
        first = min((t.issued_at for t in day.tickets.values() if t.issued_at), default=now)
        recent_span = max(min(self.rate_window_s, now - first), 900.0)
        day_span = max(now - first, 900.0)
        whole: dict[tuple[str, int], int] = {}
        recent = 0
        for t in day.tickets.values():
            if t.service and t.issued_at is not None and t.issued_at <= now:
                k = (t.service, PRIORITY_RANK.get(t.priority, 2))
                whole[k] = whole.get(k, 0) + 1
                recent += now - recent_span < t.issued_at
        total = sum(whole.values())
        curve = 1.0
        if total:
            curve = min(self.rate_curve_max, (recent / recent_span) / (total / day_span))
        out = {}
        for k, n in whole.items():
            if serving is not None and serving.get(k[0], 0) <= 1:
                out[k] = self.rate_scale_lone * curve * n / day_span
            else:
                out[k] = self.rate_scale * n / day_span
        return out

    def queue_items(self, day: Day, now: float, target: str | None) -> list[Item]:
        return [
            Item(
                t.service or "",
                PRIORITY_RANK.get(t.priority, 2),
                t.issued_at if t.issued_at is not None else now,
                max(0.0, now - (t.issued_at if t.issued_at is not None else now)),
                True,
                k == target,
            )
            for k, t in waiting_tickets(day)
        ]

    def arrivals(
        self,
        day: Day,
        now: float,
        below_rank: int,
        hall: str = "",
        serving: dict[str, int] | None = None,
    ) -> list[Item]:
        """Expected future tickets of the classes that overtake rank `below_rank`, spread evenly
        (at (k - 1/2) / rate) until `hall`'s closing time or three hours ahead."""
        horizon = min(self.closing_ts(now, hall), now + 3 * 3600.0)
        out = []
        for (service, rank), rate in self.overtaking_rates(day, now, serving).items():
            if rank >= below_rank or rate <= 0:
                continue
            k = 1
            while (at := now + (k - 0.5) / rate) < horizon:
                out.append(Item(service, rank, at, 0.0, False))
                k += 1
        return out

    def quick_estimate(
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

    def simulate_ticket(
        self, hall_name: str, hall: Hall, day: Day, ticket: str, t: Ticket, now: float
    ) -> tuple[float | None, int]:
        service = t.service or ""
        if not any(w.state == "open" and service in w.services for w in hall.windows.values()):
            return None, 0
        self.slow_until = outage_end(hall, now, self.outage_law)
        self.censoring(self.in_service(hall, day, now))
        try:
            return self._estimate(
                self.windows_at(hall_name, hall, day, now),
                self.queue_items(day, now, ticket),
                PRIORITY_RANK.get(t.priority, 2),
                day,
                now,
                f"{hall_name}:{ticket}:{now}",
                hall=hall_name,
            )
        finally:
            self.slow_until = None
            self.censoring(None)

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
        queue = self.queue_items(day, now, None)
        queue.append(Item(service, 2, now, 0.0, False, True))
        seed = f"{hall}:{service}:new:{now}"
        self.slow_until = outage_end(h, now, self.outage_law)
        self.censoring(self.in_service(h, day, now))
        try:
            wins = self.windows_at(hall, h, day, now, extra)
            return self._estimate(wins, queue, 2, day, now, seed, samples, hall)[0]
        finally:
            self.slow_until = None
            self.censoring(None)
