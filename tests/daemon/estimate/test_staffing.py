"""Tests of estimate.erlang: Erlang B/C/A by stable recursions, staffing and closing overrun."""

from __future__ import annotations

import math

import pytest
from hallwatch.daemon.estimate.erlang import (
    MAX_SERVERS,
    closing_overrun,
    erlang_a,
    erlang_b,
    erlang_c,
    erlang_c_wait,
    extra_for_arrivals,
    servers_for_wait,
)


def test_erlang_c_known_vector() -> None:
    """Offered load 10 Erl on 14 servers waits with probability 0.1741319 (published tables)."""
    assert erlang_c(14, 10.0) == pytest.approx(0.1741319, abs=1e-7)


def test_erlang_b_hand_computed() -> None:
    """B(1, 1) = 1/2 and B(2, 1) = 1/5, by the recursion B(k) = aB(k-1) / (k + aB(k-1))."""
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(2, 1.0) == pytest.approx(0.2)
    assert erlang_b(0, 3.0) == 1.0


def test_erlang_c_is_stable_for_large_loads() -> None:
    """Hundreds of Erlangs give a finite probability, where factorials would overflow."""
    p = erlang_c(1000, 980.0)
    assert 0.0 < p < 1.0 and math.isfinite(p)


def test_erlang_c_saturated_and_empty() -> None:
    """A load at or over the server count always waits; no load never does."""
    assert erlang_c(5, 5.0) == 1.0
    assert erlang_c(5, 0.0) == 0.0
    assert erlang_c_wait(5, 1.0, 10.0) == math.inf


def test_erlang_c_mean_wait_hand_computed() -> None:
    """W = C * S / (c - a): 14 servers, 10 Erl, S = 300 s gives 0.1741319 * 300 / 4 s."""
    assert erlang_c_wait(14, 10.0 / 300.0, 300.0) == pytest.approx(0.1741319 * 75.0, rel=1e-6)


def test_erlang_a_tends_to_erlang_c_without_abandonment() -> None:
    """With patience almost infinite, Erlang A gives Erlang C's waiting probability and wait."""
    a = erlang_a(14, 10.0 / 300.0, 300.0, 1e-12)
    assert a.p_wait == pytest.approx(0.1741319, abs=1e-5)
    assert a.mean_wait_s == pytest.approx(erlang_c_wait(14, 10.0 / 300.0, 300.0), rel=1e-4)


def test_erlang_a_is_finite_when_overloaded() -> None:
    """Abandonment keeps an overloaded queue finite, and some customers give up."""
    a = erlang_a(3, 1.0 / 60.0, 300.0, 1.0 / 2700.0)  # 5 Erl on 3 windows
    assert math.isfinite(a.mean_wait_s) and a.mean_wait_s > 0
    assert 0.0 < a.p_abandon < 1.0
    assert a.p_wait == pytest.approx(1.0, abs=0.01)


def test_erlang_a_with_abandonment_waits_less_than_erlang_c() -> None:
    """Impatient customers leaving shortens everyone else's wait."""
    c = erlang_c_wait(14, 12.0 / 300.0, 300.0)
    a = erlang_a(14, 12.0 / 300.0, 300.0, 1.0 / 1800.0)
    assert a.mean_wait_s < c


def test_servers_for_wait_is_the_smallest_count() -> None:
    """14 servers give 13.06 s at 10 Erl and 13 give more, so a 13.1 s target needs 14."""
    assert erlang_c_wait(13, 10.0 / 300.0, 300.0) > 13.1
    assert servers_for_wait(10.0 / 300.0, 300.0, 13.1) == 14
    assert servers_for_wait(0.0, 300.0, 60.0) == 0


def test_servers_for_wait_caps_at_max() -> None:
    """An unreachable target (0 s with arrivals) reports the cap instead of looping."""
    assert servers_for_wait(1.0, 300.0, 0.0) == MAX_SERVERS


def test_extra_for_arrivals_counts_fractional_windows() -> None:
    """Needing 14 with 12.5 windows' worth of capacity means 2 more; having 14 means none."""
    assert extra_for_arrivals(10.0 / 300.0, 300.0, 12.5, 13.1) == 2
    assert extra_for_arrivals(10.0 / 300.0, 300.0, 14.0, 13.1) == 0


def test_closing_overrun() -> None:
    """The queue clearing 600 s after closing needs 600 s of extended hours; earlier needs 0."""
    assert closing_overrun(1600.0, 1000.0) == 600.0
    assert closing_overrun(900.0, 1000.0) == 0.0
    assert closing_overrun(None, 1000.0) == 0.0
