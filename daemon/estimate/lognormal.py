"""The log-normal law the estimator fits to service times and pauses, and its fitting maths."""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

NORMAL = NormalDist()


def phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


class LogNormal:
    """Service-time law: log-normal with log-mean `mu` and log-sd `sigma`."""

    def __init__(self, mu: float, sigma: float) -> None:
        self.mu, self.sigma = mu, max(sigma, 0.05)

    @property
    def mean(self) -> float:
        return math.exp(self.mu + self.sigma**2 / 2.0)

    def survival(self, a: float) -> float:
        return 1.0 if a <= 0 else phi((self.mu - math.log(a)) / self.sigma)

    def residual(self, a: float) -> float:
        """E[S - a | S > a]: expected remaining time after `a` seconds of service."""
        if a <= 0:
            return self.mean
        la, s = math.log(a), self.sigma
        tail = phi((self.mu - la) / s)
        if tail < 1e-12:  # far in the tail the log-normal residual grows roughly like a s^2/z
            return a * s * s / max((la - self.mu) / s, 1.0)
        return max(self.mean * phi((self.mu + s * s - la) / s) / tail - a, 0.0)


def fit(logs: list[float], base: LogNormal, weight: float) -> LogNormal:
    """Log-normal from log-samples, shrunk towards `base` with `weight` pseudo-samples."""
    n = len(logs)
    if n == 0:
        return base
    m = sum(logs) / n
    v = sum((x - m) ** 2 for x in logs) / n
    mu = (n * m + weight * base.mu) / (n + weight)
    var = (n * v + weight * base.sigma**2) / (n + weight)
    return LogNormal(mu, math.sqrt(var))


def fit_censored(
    logs: list[float], censored: list[float], base: LogNormal, weight: float, rounds: int = 3
) -> LogNormal:
    """`fit` when some samples are only known to exceed their value (`censored`, log-seconds:
    services still in progress). A fit of the completed ones alone is biased short while long
    services are still running (early in the day most completions are the short ones). A few
    EM rounds: each censored sample counts with the truncated normal's first two moments
    E[x | x > c] and E[x^2 | x > c] under the current fit."""
    law = fit(logs, base, weight)
    if not censored:
        return law
    n = len(logs) + len(censored)
    s1 = sum(logs)
    s2 = sum(x * x for x in logs)
    for _ in range(rounds):
        e1 = e2 = 0.0
        for c in censored:
            a = (c - law.mu) / law.sigma
            tail = phi(-a)
            lam = math.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi) / tail if tail > 1e-12 else a
            e = law.mu + law.sigma * lam
            e1 += e
            e2 += law.sigma**2 * max(1.0 + a * lam - lam * lam, 0.0) + e * e
        m = (s1 + e1) / n
        v = max((s2 + e2) / n - m * m, 0.0)
        law = LogNormal(
            (n * m + weight * base.mu) / (n + weight),
            math.sqrt((n * v + weight * base.sigma**2) / (n + weight)),
        )
    return law


def isotonic(points: list[tuple[float, float]]) -> list[float]:
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


def residual_draw(law: LogNormal, served: float, u: float) -> float:
    """S - a for S ~ law conditioned on S > a, by inverse CDF at `u`."""
    lo = phi((math.log(served) - law.mu) / law.sigma) if served > 0 else 0.0
    p = min(max(lo + u * (1.0 - lo), 1e-12), 1.0 - 1e-12)
    return max(0.0, math.exp(law.mu + law.sigma * NORMAL.inv_cdf(p)) - served)


def residual_draws(law: LogNormal, served: float) -> Callable[[float], float]:
    """`residual_draw(law, served, u)` as a function of `u`, its conditioning computed once."""
    lo = phi((math.log(served) - law.mu) / law.sigma) if served > 0 else 0.0
    mu, sigma, inv_cdf = law.mu, law.sigma, NORMAL.inv_cdf

    def draw(u: float) -> float:
        p = min(max(lo + u * (1.0 - lo), 1e-12), 1.0 - 1e-12)
        return max(0.0, math.exp(mu + sigma * inv_cdf(p)) - served)

    return draw
