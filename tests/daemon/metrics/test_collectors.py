"""metrics.collectors: one failing metrics collector never takes the scrape down."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hallwatch.daemon.core.state import Day, HallsState
from hallwatch.daemon.metrics.collectors import SafeRegistry
from hallwatch.daemon.metrics.families import StateCollector
from prometheus_client import Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tests.factories import at, door_ev


class Raising(Collector):
    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("half_done", "Yielded before the failure.", value=1)
        raise RuntimeError("collector bug")


def test_a_collector_that_raises_is_left_out_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """A collector raising mid-scrape is left out (all of it), the rest is served, the failure
    is counted per collector and logged once a minute at most."""
    registry = SafeRegistry(clock=lambda: 1000.0)
    hits = Counter("hits", "A client-library counter.", registry=registry)
    hits.inc(3)
    registry.register(Raising(), name="raising")
    with caplog.at_level(logging.ERROR, logger="hallwatch.metrics"):
        for _ in range(5):
            text = generate_latest(registry).decode()
    assert "hits_total 3.0" in text and "half_done" not in text
    assert 'hallwatch_collector_errors_total{collector="raising"} 4.0' in text
    assert (
        registry.get_sample_value("hallwatch_collector_errors_total", {"collector": "raising"}) == 5
    )
    assert len(caplog.records) == 1


def test_a_stored_value_too_large_for_a_float_does_not_break_metrics() -> None:
    """A headcount of 10^400 (an older hallwatch accepted such door totals, and a snapshot kept
    it across restarts) loses its own sample; every other series of every hall is served."""
    state = HallsState()
    t0 = at("2026-11-26T09:00")
    state.apply(door_ev("d1", 0, 0, t0))
    state.apply(door_ev("d1", 5, 0, t0 + 1))
    state.apply(door_ev("d1", 0, 0, t0, hall="h2"))
    day = state.halls["h1"].today
    assert isinstance(day, Day)
    day.occupancy = day.peak_occupancy = 10**400
    registry = SafeRegistry()
    registry.register(StateCollector(lambda: state, lambda: t0 + 2, 90.0))
    text = generate_latest(registry).decode()
    assert 'hallwatch_hall_headcount{hall="h2"} 0.0' in text
    assert 'hallwatch_hall_headcount{hall="h1"}' not in text
    assert 'hallwatch_hall_last_event_timestamp_seconds{hall="h1"}' in text
    assert registry.errors == {"StateCollector": 2}


def test_unregister_takes_the_collector_out() -> None:
    """A registered collector can be unregistered again by itself (not by its wrapper)."""
    registry = SafeRegistry()
    c = Counter("c", "c", registry=registry)
    registry.unregister(c)
    assert "c_total" not in generate_latest(registry).decode()
