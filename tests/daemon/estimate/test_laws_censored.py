"""Tests of the service laws counting the services still in progress (censored samples)."""

from __future__ import annotations

import math
import random

from hallwatch.daemon.estimate.lognormal import LogNormal, fit, fit_censored
from hallwatch.daemon.estimate.model import Estimator
from hallwatch.sensors.events import Event

from tests.daemon.estimate.test_estimate import T0, feed
from tests.factories import issued, ticket_ev, window_ev


def test_censored_samples_undo_the_bias_of_the_completed_ones() -> None:
    """Of 200 services of median 300 s watched for 400 s, the completed ones alone give a
    median well below 300 s; counting the others as "longer than 400 s" brings it back near."""
    rng = random.Random(7)
    true = LogNormal(math.log(300.0), 0.6)
    durations = [math.exp(rng.gauss(true.mu, true.sigma)) for _ in range(200)]
    done = [math.log(d) for d in durations if d <= 400.0]
    running = [math.log(400.0) for d in durations if d > 400.0]
    prior = LogNormal(math.log(300.0), 0.5)
    naive = fit(done, prior, 0.0)
    fixed = fit_censored(done, running, prior, 0.0)
    assert math.exp(naive.mu) < 260.0
    assert abs(fixed.mu - true.mu) < 0.5 * abs(naive.mu - true.mu)


def test_nothing_censored_is_the_plain_fit() -> None:
    """Without services in progress the censored fit is the plain one."""
    prior = LogNormal(math.log(300.0), 0.5)
    logs = [math.log(x) for x in (100.0, 200.0, 250.0)]
    a, b = fit(logs, prior, 2.0), fit_censored(logs, [], prior, 2.0)
    assert (a.mu, a.sigma) == (b.mu, b.sigma)


def _morning(long_s: float) -> tuple[Estimator, list[Event]]:
    """Two windows for two services; four `gjj` services of 120 s completed at w1 while w2
    serves a `dk` customer for `long_s`."""
    events: list[Event] = [
        window_ev("w1", "open", T0 - 3600, services=("gjj", "dk")),
        window_ev("w2", "open", T0 - 3600, services=("gjj", "dk")),
        issued("L001", T0 - long_s - 5, service="dk"),
        ticket_ev("called", "L001", T0 - long_s, window="w2"),
    ]
    for i in range(4):
        t = T0 - 600 + i * 130
        events += [
            issued(f"S{i:03d}", t - 1),
            ticket_ev("called", f"S{i:03d}", t, window="w1"),
            ticket_ev("completed", f"S{i:03d}", t + 120.0, window="w1"),
        ]
    return Estimator(samples=0), events


def test_a_long_service_in_progress_lengthens_the_pooled_law_while_estimating() -> None:
    """A `dk` service running for 20 minutes beside four `gjj` ones of two minutes makes the
    laws an estimate uses longer (`dk`, never completed, is the pooled law; `gjj` leans on it)
    than the completed services alone say; outside an estimate the laws are unchanged."""
    est, events = _morning(1200.0)
    state, _ = feed(est, *events)
    plain = {s: est.law(s).mean for s in ("gjj", "dk")}
    hall = state.halls["h1"]
    assert hall.today is not None
    censored = est.in_service(hall, hall.today, T0)
    assert censored == {"dk": [math.log(1200.0)]}
    est.censoring(censored)
    try:
        assert est.law("dk").mean > 1.2 * plain["dk"]
        assert est.law("gjj").mean > 1.05 * plain["gjj"]
    finally:
        est.censoring(None)
    assert {s: est.law(s).mean for s in ("gjj", "dk")} == plain


def test_a_call_too_recent_to_tell_from_a_no_show_is_not_counted() -> None:
    """A call of a minute ago (shorter than two recalls) counts as nothing."""
    est, events = _morning(60.0)
    state, _ = feed(est, *events)
    hall = state.halls["h1"]
    assert hall.today is not None
    assert est.in_service(hall, hall.today, T0) is None
