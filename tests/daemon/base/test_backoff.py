"""Tests of hallwatch.daemon.base.backoff: capped exponential reconnect delays with full jitter."""

from __future__ import annotations

import random

from hallwatch.daemon.base.backoff import delay
from hypothesis import given
from hypothesis import strategies as st


def test_grows_exponentially_until_the_cap() -> None:
    """With the same random draw, each attempt doubles the delay until the cap is reached."""
    seed = 7
    first_draw = random.Random(seed).random()
    got = [delay(n, base=1.0, cap=30.0, rand=random.Random(seed)) for n in range(8)]
    expected = [max(0.5, min(30.0, 2.0**n) * first_draw) for n in range(8)]
    assert got == expected
    assert got[3] > got[2] > got[1]
    assert got[7] == got[6] == 30.0 * first_draw  # capped: no more growth


def test_reaches_the_cap_but_never_exceeds_it() -> None:
    """Large attempts stay at or below the cap, and come close to it over many draws."""
    rng = random.Random(1)
    values = [delay(n, base=0.5, cap=30.0, rand=rng) for n in range(5, 2000)]
    assert max(values) <= 30.0
    assert max(values) > 29.0


def test_huge_attempt_numbers_do_not_overflow() -> None:
    """An attempt count in the millions still gives a finite delay within bounds."""
    d = delay(10**6, base=0.5, cap=30.0, rand=random.Random(3))
    assert 0.25 <= d <= 30.0


@given(
    attempt=st.integers(0, 200),
    base=st.floats(0.01, 10),
    extra=st.floats(0, 100),
    seed=st.integers(0, 2**32),
)
def test_bounds(attempt: int, base: float, extra: float, seed: int) -> None:
    """Every delay is within [base/2, cap] whenever cap >= base."""
    cap = base + extra
    d = delay(attempt, base=base, cap=cap, rand=random.Random(seed))
    assert base / 2 <= d <= cap


def test_jitter_varies_with_the_rng() -> None:
    """Different seeds give different delays for the same attempt; the same seed repeats."""
    by_seed = {s: delay(6, base=1.0, cap=60.0, rand=random.Random(s)) for s in range(20)}
    assert len(set(by_seed.values())) > 15
    assert delay(6, base=1.0, cap=60.0, rand=random.Random(4)) == by_seed[4]


def test_full_jitter_spreads_over_the_range() -> None:
    """Draws for one attempt spread from near base/2 up to near the ceiling."""
    rng = random.Random(11)
    values = [delay(4, base=1.0, cap=100.0, rand=rng) for _ in range(500)]
    assert min(values) < 1.0
    assert max(values) > 15.0
    assert min(values) >= 0.5
