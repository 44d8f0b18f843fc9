"""The laws the estimator fits to what it learned: service, pause, recall, gap, no-show, cancel."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from hallwatch.daemon.core.state import Day, Hall
from hallwatch.daemon.estimate.learned import AGE_BIN_S, AGE_BINS, Learned
from hallwatch.daemon.estimate.lognormal import LogNormal, fit, fit_censored, isotonic, phi
from hallwatch.daemon.estimate.simulation import Handling, Item


@dataclass(frozen=True, slots=True)
class Priors:
    """What the laws assume before anything is learned; `shrink` pseudo-samples weigh them."""

    service_s: float
    sigma: float
    recall_s: float
    gap_s: float
    pause_s: float
    shrink: float
    # Median patience before anything is learned (`prior_no_show`); None: nobody gives up but
    # the learned share, at any age (a flat no-show curve).
    patience_s: float | None = None
    # Median length of a business-system outage before the hall has seen one end.
    outage_s: float = 1800.0  # `OUTAGE_S`


#: Outage lengths before any is learned: median half an hour (the estimator's first guess,
#: fixed before the families of `sensors.scenarios` existed), log-sd wide (a re-login, or a
#: morning's repair).
OUTAGE_S, OUTAGE_SIGMA = 1800.0, 0.8


_POOLED = "\0pooled"  # the key of the pooled fit among the cached laws


class Laws:
    """Priors and the laws fitted to `learned`, cached until new data invalidates them."""

    def __init__(self, learned: Learned | None, priors: Priors) -> None:
        p = priors
        self.prior = LogNormal(math.log(p.service_s) - p.sigma**2 / 2, p.sigma)
        self.prior_recall_s, self.prior_gap_s = p.recall_s, p.gap_s
        self.prior_pause_s = p.pause_s
        self.shrink = p.shrink
        self.learned = learned or Learned()
        self._laws: dict[str, LogNormal] | None = None
        # Services in progress now (service -> log of the time served so far), set per estimate
        # by the forecaster (`censoring`), and the laws that count them.
        self._censored: dict[str, list[float]] | None = None
        self._censored_laws: dict[str, LogNormal] = {}
        self.prior_pause = LogNormal(math.log(p.pause_s) - p.sigma**2 / 2, p.sigma)
        self._pause_law: LogNormal | None = None
        self._q: list[float] | None = None
        self.prior_patience_s = p.patience_s
        # While a business system is down, services called before `slow_until` take
        # `slow_factor` times longer (staff on paper); set per estimate by the forecaster.
        self.slow_until: float | None = None
        self._slow: float | None = None
        self.prior_outage = LogNormal(math.log(p.outage_s), OUTAGE_SIGMA)
        self._outage_law: LogNormal | None = None

    def law(self, service: str) -> LogNormal:
        """Service-time law for `service`: its own fit, shrunk to the pooled fit and the prior.
        While `censoring` is set (during an estimate), the pooled fit also counts the services
        in progress as censored samples (`fit_censored`)."""
        if self._censored:
            law = self._censored_laws.get(service)
            if law is None:
                base = self._censored_laws.get(_POOLED)
                if base is None:
                    base = self._censored_laws[_POOLED] = fit_censored(
                        self._pooled_logs(),
                        [x for xs in self._censored.values() for x in xs],
                        self.prior,
                        self.shrink,
                    )
                logs = self.learned.service_logs.get(service, [])
                law = self._censored_laws[service] = fit(logs, base, self.shrink)
            return law
        if self._laws is None:
            self._laws = {}
        law = self._laws.get(service)
        if law is None:
            base = self._laws.get(_POOLED)
            if base is None:
                base = self._laws[_POOLED] = fit(self._pooled_logs(), self.prior, self.shrink)
            law = self._laws[service] = fit(
                self.learned.service_logs.get(service, []), base, self.shrink
            )
        return law

    def _pooled_logs(self) -> list[float]:
        return [x for logs in self.learned.service_logs.values() for x in logs]

    def censoring(self, censored: dict[str, list[float]] | None) -> None:
        """Set (None: clear) the services in progress (`in_service`) the laws count."""
        self._censored = censored or None
        self._censored_laws = {}

    def in_service(self, hall: Hall, day: Day, now: float) -> dict[str, list[float]] | None:
        """The services in progress at `hall`'s open windows, by service: the log of how long
        each has been served, when that is longer than two recalls (a no-show is over by then)
        and no business system was down since its call (those teach `slow_factor`, not the
        law). None when there is none."""
        out: dict[str, list[float]] = {}
        least = 2.0 * self.recall_s
        for w in hall.windows.values():
            if w.state != "open" or w.serving is None or w.serving_since is None:
                continue
            a = now - w.serving_since
            t = day.tickets.get(w.serving)
            if a <= least or t is None or not t.service:
                continue
            if any(s.state != "up" or s.since > w.serving_since for s in hall.systems.values()):
                continue
            out.setdefault(t.service, []).append(math.log(a))
        return out or None

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
            self._pause_law = fit(logs, self.prior_pause, 1.0)
        return self._pause_law

    @property
    def slow_factor(self) -> float:
        """How much longer a service takes during a system outage: the learned log-ratios'
        mean, shrunk to a prior of 1.5 by five pseudo-samples."""
        if self._slow is None:
            logs = self.learned.slow or []
            self._slow = math.exp((sum(logs) + 5 * math.log(1.5)) / (len(logs) + 5))
        return self._slow

    @property
    def outage_law(self) -> LogNormal:
        """Outage-length law: a log-normal fit of the hall's past outages, shrunk to the prior
        by two pseudo-outages."""
        if self._outage_law is None:
            logs = [math.log(x) for x in self.learned.outages or [] if x > 0]
            self._outage_law = fit(logs, self.prior_outage, 2.0)
        return self._outage_law

    def no_show_p(self, age: float) -> float:
        """P(no-show | called after waiting `age` s): binned, each bin shrunk to a logistic
        curve in log(age) fitted to all bins (`no_show_curve`), monotone, linear between bin
        centres (so a later call never makes a window free up earlier).

        Shrinking each bin to the day's mean instead flattened the curve where calls are few:
        after an outage, tickets called after two hours were nine in ten no-shows and the
        curve said one in four, so a queue of such tickets was forecast to take hours."""
        if self._q is None:
            bins = self.learned.age_bins
            curve = no_show_curve(bins, self.prior_patience_s)
            raw = [
                ((b[1] + 4 * c) / (b[0] + 4), b[0] + 4.0) for b, c in zip(bins, curve, strict=True)
            ]
            self._q = isotonic(raw)
        x = age / AGE_BIN_S - 0.5
        if x <= 0:
            return self._q[0]
        i = int(x)
        if i >= AGE_BINS - 1:
            return self._q[-1]
        return self._q[i] + (self._q[i + 1] - self._q[i]) * (x - i)

    @property
    def cancel_share(self) -> float:
        L = self.learned
        return (L.cancelled + 1.0) / (L.cancelled + L.no_shows + 4.0)

    def cancel_p(self, age_now: float, age_call: float) -> float:
        """P(a ticket still waiting at age_now is cancelled before its call at age_call)."""
        k = self.cancel_share
        if k >= 1.0 or age_call <= age_now:
            return 0.0

        def gave_up(age: float) -> float:  # P(patience < age), from the no-show share
            q = self.no_show_p(age)
            return q / ((1.0 - k) + k * q)

        f0, f1 = gave_up(age_now), gave_up(age_call)
        return min(max(k * (f1 - f0) / max(1.0 - k * f0, 1e-9), 0.0), 1.0)

    def handling(self, item: Item, t: float) -> float:
        """Expected time a window spends on `item` if it is called at `t` (gap included)."""
        age = t - item.issued_at
        q = self.no_show_p(age)
        mean = self.law(item.service).mean
        if self.slow_until is not None and t < self.slow_until:
            mean *= self.slow_factor
        work = q * self.recall_s + (1.0 - q) * mean + self.gap_s
        return (1.0 - self.cancel_p(item.age_now, age)) * work

    def sampler(self, rng: random.Random) -> Handling:
        """One random realisation of handling times. Each item's uniforms (cancel, no-show,
        service) are the `item.idx`-th triple drawn from `rng`, drawn only once a window calls
        an item that far down the list (items never reached cost nothing); in `idx` order, so
        the triples do not depend on which items are called (common random numbers)."""
        recall, gap = self.recall_s + self.gap_s, self.gap_s
        k = self.cancel_share
        no_show_p, law_of = self.no_show_p, self.law
        draws: list[tuple[float, float, float]] = []
        rand, gauss = rng.random, rng.gauss
        gave_up_at: dict[float, float] = {}  # P(patience < age_now), by age_now

        def handle(item: Item, t: float) -> float | None:
            i = item.idx
            while len(draws) <= i:
                draws.append((rand(), rand(), gauss(0.0, 1.0)))
            u_cancel, u_ns, z = draws[i]
            age = t - item.issued_at
            q = no_show_p(age)
            # Inlined `cancel_p` (same arithmetic): it is the hottest call of a sampled run.
            if not item.target and k < 1.0 and age > item.age_now:
                f0 = gave_up_at.get(item.age_now)
                if f0 is None:
                    q0 = no_show_p(item.age_now)
                    f0 = gave_up_at[item.age_now] = q0 / ((1.0 - k) + k * q0)
                f1 = q / ((1.0 - k) + k * q)
                if u_cancel < min(max(k * (f1 - f0) / max(1.0 - k * f0, 1e-9), 0.0), 1.0):
                    return None
            if u_ns < q:
                return recall
            law = law_of(item.service)
            return math.exp(law.mu + law.sigma * z) + gap

        until = self.slow_until
        if until is None:
            return handle
        factor = self.slow_factor

        def slowed(item: Item, t: float) -> float | None:
            # The same draws as `handle`; a service called during the outage is stretched.
            d = handle(item, t)
            if d is None or t >= until or d == recall:
                return d
            return (d - gap) * factor + gap

        return slowed


#: Patience before anything is learned (the estimator's default `prior_patience_s`, fitted on
#: the development families): log-normal of log-sd PATIENCE_SIGMA, of which CANCEL_SHARE
#: cancel (the rest become no-shows when called).
PATIENCE_S, PATIENCE_SIGMA, CANCEL_SHARE = 2700.0, 0.8, 0.3


def prior_no_show(age: float, patience_s: float) -> float:
    """P(no-show | called after `age` s) by a prior patience of median `patience_s`."""
    f = phi(math.log(max(age, 1.0) / patience_s) / PATIENCE_SIGMA)
    return min(max((1.0 - CANCEL_SHARE) * f / (1.0 - CANCEL_SHARE * f), 0.01), 0.99)


def no_show_curve(bins: list[list[int]], patience_s: float | None = None) -> list[float]:
    """P(no-show) at each age bin's centre from a logistic regression on log(age) over all
    bins (a few damped Newton steps), with half a pseudo-call per bin at the prior patience's
    share (`prior_no_show`; without `patience_s`, at the overall share): where calls are few
    (the long waits) the curve follows the prior, where they are many, the hall."""
    n = sum(b[0] for b in bins)
    g = (sum(b[1] for b in bins) + 0.5) / (n + 10.0)
    xs = [math.log((i + 0.5) * AGE_BIN_S) for i in range(len(bins))]
    mx = sum(xs) / len(xs)
    xs = [x - mx for x in xs]
    data = [
        (
            x,
            b[0] + 0.5,
            b[1]
            + 0.5 * (g if patience_s is None else prior_no_show((i + 0.5) * AGE_BIN_S, patience_s)),
        )
        for i, (x, b) in enumerate(zip(xs, bins, strict=True))
    ]
    share = sum(d[2] for d in data) / sum(d[1] for d in data)
    a, c = math.log(share / (1.0 - share)), 0.0
    for _ in range(12):
        ga, gc, haa, hac, hcc = 0.0, -_RIDGE * c, 0.0, 0.0, _RIDGE
        for x, w, k in data:
            p = _logistic(a + c * x)
            r, v = k - w * p, w * p * (1.0 - p)
            ga, gc = ga + r, gc + r * x
            haa, hac, hcc = haa + v, hac + v * x, hcc + v * x * x
        det = haa * hcc - hac * hac
        if det <= 1e-12:
            break
        da, dc = (hcc * ga - hac * gc) / det, (haa * gc - hac * ga) / det
        a, c = a + max(-2.0, min(2.0, da)), c + max(-2.0, min(2.0, dc))
        if abs(da) + abs(dc) < 1e-4:
            break
    return [_logistic(a + c * x) for x in xs]


_RIDGE = 0.1  # on the slope: a fit always exists


def _logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-min(max(z, -30.0), 30.0)))
