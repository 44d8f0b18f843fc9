"""Tests of estimate.predictors: the classic QL, abandonment-aware QL, LES and HOL baselines."""

from __future__ import annotations

import pytest
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.estimate.predictors import abandonment_rate, classic, ql, ql_abandon
from hallwatch.sensors.events import Event

from tests.factories import at, issued, ticket_ev, window_ev

T0 = at("2026-11-26T10:00")


def run(*events: Event) -> HallsState:
    state = HallsState()
    for ev in events:
        state.apply(ev)
    return state


def mean300(service: str) -> float:
    return 300.0


def test_ql_hand_computed() -> None:
    """(n + 1) / (s mu): 3 ahead, 2 windows, 300 s service gives 600 s."""
    assert ql(3, 2, 300.0) == 600.0


def test_ql_abandon_reduces_to_ql_and_shrinks_with_patience_loss() -> None:
    """With theta = 0 it is QL; with theta > 0 each one ahead may leave, so it is shorter."""
    assert ql_abandon(3, 2, 300.0, 0.0) == pytest.approx(600.0)
    rate = 2 / 300.0
    expected = sum(1 / (rate + i * 0.001) for i in range(4))
    assert ql_abandon(3, 2, 300.0, 0.001) == pytest.approx(expected)
    assert expected < 600.0


def test_classic_on_a_busy_window() -> None:
    """One busy window, one ticket ahead: QL 600, LES the last called wait, HOL the head's age."""
    s = run(
        window_ev("w1", "open", T0 - 3600),
        issued("A001", T0 - 100),
        ticket_ev("called", "A001", T0, window="w1"),
        issued("A002", T0 + 10),
        issued("A003", T0 + 20),
    )
    c = classic(s, "h1", "A003", T0 + 30, mean_service_s=mean300)
    assert c.ql == 600.0
    assert c.ql_ab == pytest.approx(600.0)
    assert c.les == 100.0
    assert c.hol == 20.0


def test_classic_predicts_zero_with_an_idle_window() -> None:
    """Nobody ahead and an idle open window serving the service: every baseline says 0."""
    s = run(window_ev("w1", "open", T0), window_ev("w2", "open", T0), issued("A001", T0 + 5))
    assert classic(s, "h1", "A001", T0 + 5, mean_service_s=mean300).as_dict() == {
        "ql": 0.0,
        "ql_ab": 0.0,
        "les": 0.0,
        "hol": 0.0,
    }


def test_classic_none_without_an_open_window() -> None:
    """No open window serves the service (here: only a paused one): no baseline estimate."""
    s = run(window_ev("w1", "paused", T0), issued("A001", T0 + 5))
    assert classic(s, "h1", "A001", T0 + 5, mean_service_s=mean300).ql is None


def test_classic_counts_only_tickets_called_before() -> None:
    """A green ticket issued later is ahead of a normal one; a later normal one is not."""
    s = run(
        window_ev("w1", "open", T0),
        issued("A001", T0),
        ticket_ev("called", "A001", T0, window="w1"),
        issued("A002", T0 + 10),
        issued("G001", T0 + 20, priority="green"),
        issued("A003", T0 + 30),
    )
    assert classic(s, "h1", "A002", T0 + 30, mean_service_s=mean300).ql == 600.0  # G001 + it
    assert classic(s, "h1", "G001", T0 + 30, mean_service_s=mean300).ql == 300.0


def test_abandonment_rate_is_give_ups_over_exposure() -> None:
    """One cancellation over 100 s of waiting called + 100 s still waiting gives 1/200 per s."""
    s = run(
        window_ev("w1", "open", T0),
        issued("A001", T0),
        issued("A002", T0),
        ticket_ev("called", "A001", T0 + 100, window="w1"),
        ticket_ev("cancelled", "A002", T0 + 50),
        issued("A003", T0 + 100),
    )
    day = s.halls["h1"].today
    assert day is not None
    assert abandonment_rate(day, T0 + 200) == pytest.approx(1 / 200.0)
