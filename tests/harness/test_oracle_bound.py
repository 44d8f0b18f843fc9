"""The oracle bound's forks of the hall simulation (tests/harness/oracle_bound.py)."""

from __future__ import annotations

import math
import random
import statistics

from hallwatch.sensors.scenarios import scenario_setup
from hallwatch.sensors.sim_hall import Hall, _Visit

from tests.harness.oracle_bound import conditional_duration, fork, redraw_ends, run_until_called


def _hall(family: str, seed: int) -> Hall:
    profile, sim_seed, cls = scenario_setup(family, seed, 0)
    hall = cls(profile, sim_seed)
    hall.start()
    return hall


def test_fork_with_the_real_rng_state_reproduces_every_wait() -> None:
    """A fork given the real queue RNG's state calls each waiting ticket when the real day does
    (silent leavers included: their patience ran out first and they did not cancel)."""
    checked: list[tuple[_Visit, float | None]] = []
    for seed in (1, 2):
        hall = _hall("quiet", seed)
        while hall.heap:
            _, kind = hall.step()
            v = hall.visits[-1] if kind == "arrive" else None
            if v is None or v.called_at is not None:
                continue
            rng = random.Random()
            rng.setstate(hall.rng.getstate())
            clone, target = fork(hall, rng, keep=v)
            assert target is not None and target is not v
            checked.append((v, run_until_called(clone, target)))
    called = [(v, got) for v, got in checked if v.called_at is not None]
    assert len(called) > 70
    assert sum(v.abandoned for v, _ in called) >= 3
    assert all(v.called_at == got for v, got in called)


def test_forks_leave_the_real_day_unchanged() -> None:
    """Forking at every arrival (fair variant, fresh RNGs) leaves the real day's events intact."""
    profile, sim_seed, cls = scenario_setup("calm", 1, 0)
    untouched = cls(profile, sim_seed)
    untouched.run()
    hall = _hall("calm", 1)
    while hall.heap:
        now, kind = hall.step()
        if kind == "arrive" and hall.visits[-1].called_at is None:
            rng = random.Random(now)
            clone, target = fork(hall, rng, keep=hall.visits[-1])
            redraw_ends(clone, now, rng)
            assert target is not None
            run_until_called(clone, target)
    assert len(hall.raw) > 100
    assert hall.raw == untouched.raw
    assert hall.crossings == untouched.crossings


def test_fair_redraw_never_ends_before_the_elapsed_time() -> None:
    """The conditioned draw is never shorter than the elapsed service, even far in the tail."""
    rng = random.Random(7)
    mean, sigma = 300.0, 0.7
    for elapsed in (0.0, 1.0, 150.0, 300.0, 1200.0, 5000.0, 1e5):
        for factor in (1.0, 1.6):
            draws = [conditional_duration(rng, mean, sigma, elapsed, factor) for _ in range(400)]
            assert min(draws) >= elapsed
    # It is the log-normal law beyond `elapsed`, not `elapsed` itself: with nothing elapsed the
    # median is the law's, exp(mu); past 1200 s it lies above 1200 s.
    fresh = [conditional_duration(rng, mean, sigma, 0.0) for _ in range(4000)]
    mu = math.log(mean) - sigma * sigma / 2.0
    assert abs(statistics.median(fresh) / math.exp(mu) - 1.0) < 0.05
    assert (
        statistics.median(conditional_duration(rng, mean, sigma, 1200.0) for _ in range(400))
        > 1250.0
    )


def test_fair_fork_ends_every_service_in_progress_after_now() -> None:
    """In a fair fork every service in progress ends at or after the moment of the fork."""
    hall = _hall("weekday", 1)
    forks = 0
    while hall.heap and forks < 60:
        now, kind = hall.step()
        busy = [w for w in hall.windows if w.current is not None]
        if kind != "arrive" or not busy:
            continue
        clone, _ = fork(hall, random.Random(forks))
        redraw_ends(clone, now, random.Random(forks))
        ends = [t for t, _, k, w in clone.heap if k == "end" and not w.current.abandoned]
        assert len(ends) == sum(not w.current.abandoned for w in busy)
        assert all(t >= now for t in ends)
        forks += 1
    assert forks == 60
