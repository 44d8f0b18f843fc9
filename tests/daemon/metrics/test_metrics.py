"""Tests of metrics.families: the state collector's series and the ingest counters."""

from __future__ import annotations

from hallwatch.daemon.core.state import HallsState, Limits
from hallwatch.daemon.metrics.families import IngestMetrics, StateCollector, state_metrics
from hallwatch.sensors.events import Event, Reason
from prometheus_client import CollectorRegistry, generate_latest

from tests.factories import (
    at,
    complaint_ev,
    device_ev,
    door_ev,
    issued,
    system_ev,
    ticket_ev,
    window_ev,
)

T0 = at("2026-11-26T09:00")
HEARTBEAT = 90.0


def build(*events: Event) -> HallsState:
    state = HallsState()
    for ev in events:
        state.apply(ev)
    return state


class Scraper:
    """A fresh registry with a StateCollector over a state and a clock the test sets."""

    def __init__(self, state: HallsState, now: float) -> None:
        self.state, self.now = state, now
        self.registry = CollectorRegistry()
        self.registry.register(StateCollector(lambda: self.state, lambda: self.now, HEARTBEAT))

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def series(self, hall: str) -> list[str]:
        """Every exposed sample line mentioning the hall."""
        text = generate_latest(self.registry).decode()
        return [ln for ln in text.splitlines() if f'hall="{hall}"' in ln]


def busy_hall() -> HallsState:
    return build(
        window_ev("w1", "open", T0, ("提取", "贷款")),
        window_ev("w2", "open", T0, ("提取",), emergency=True),
        window_ev("w3", "paused", T0, ("咨询",)),
        door_ev("east", 0, 0, T0),
        door_ev("east", 12, 2, T0 + 60),
        issued("A1", T0 + 10, "提取", "normal"),
        issued("A2", T0 + 20, "提取", "normal"),
        issued("G1", T0 + 30, "提取", "green"),
        issued("L1", T0 + 40, "贷款", "appointment"),
        ticket_ev("called", "A1", T0 + 100, window="w1"),
        device_ev("tm-01", "online", T0),
        system_ev("core", "degraded", T0),
        complaint_ev("c1", T0, "serious"),
    )


def test_queue_waiting_per_service_and_priority() -> None:
    """queue_waiting counts waiting tickets per (service, priority)."""
    m = Scraper(busy_hall(), T0 + 200)
    assert m.value("hallwatch_queue_waiting", hall="h1", service="提取", priority="normal") == 1
    assert m.value("hallwatch_queue_waiting", hall="h1", service="提取", priority="green") == 1
    assert (
        m.value("hallwatch_queue_waiting", hall="h1", service="贷款", priority="appointment") == 1
    )


def test_queue_waiting_zeros_for_known_services() -> None:
    """A service known from a window but with nobody waiting shows 0 for every priority."""
    m = Scraper(busy_hall(), T0 + 200)
    for prio in ("green", "appointment", "normal"):
        assert m.value("hallwatch_queue_waiting", hall="h1", service="咨询", priority=prio) == 0
    assert m.value("hallwatch_queue_waiting", hall="h1", service="贷款", priority="green") == 0
    assert m.value("hallwatch_queue_oldest_wait_seconds", hall="h1", service="咨询") == 0


def test_oldest_wait_is_head_of_line() -> None:
    """The oldest wait of a service is now minus the earliest issue time still waiting."""
    m = Scraper(busy_hall(), T0 + 200)
    assert m.value("hallwatch_queue_oldest_wait_seconds", hall="h1", service="提取") == 180
    assert m.value("hallwatch_queue_oldest_wait_seconds", hall="h1", service="贷款") == 160


def test_windows_open_and_state() -> None:
    """windows_open counts open windows; emergency ones are counted apart; states are one-hot."""
    m = Scraper(busy_hall(), T0 + 200)
    assert m.value("hallwatch_windows_open", hall="h1") == 2
    assert m.value("hallwatch_windows_emergency_open", hall="h1") == 1
    assert m.value("hallwatch_window_state", hall="h1", window="w3", state="paused") == 1
    assert m.value("hallwatch_window_state", hall="h1", window="w3", state="open") == 0
    assert m.value("hallwatch_window_serving", hall="h1", window="w1") == 1
    assert m.value("hallwatch_window_serving", hall="h1", window="w2") == 0
    m.state.apply(window_ev("w1", "closed", T0 + 300))
    assert m.value("hallwatch_windows_open", hall="h1") == 1


def test_headcount_tickets_and_mean_wait() -> None:
    """Headcount, peak, today's ticket counts and mean wait follow the state."""
    m = Scraper(busy_hall(), T0 + 200)
    assert m.value("hallwatch_hall_headcount", hall="h1") == 10
    assert m.value("hallwatch_hall_headcount_peak", hall="h1") == 10
    assert m.value("hallwatch_tickets_today", hall="h1", event="issued") == 4
    assert m.value("hallwatch_tickets_today", hall="h1", event="called") == 1
    assert m.value("hallwatch_tickets_today", hall="h1", event="no_show") == 0
    assert m.value("hallwatch_wait_mean_seconds_today", hall="h1") == 90
    assert m.value("hallwatch_complaints_registered", hall="h1", severity="serious") == 1
    assert m.value("hallwatch_complaints_registered", hall="h1", severity="normal") == 0
    assert m.value("hallwatch_system_state", hall="h1", system="core", state="degraded") == 1
    assert m.value("hallwatch_hall_last_event_timestamp_seconds", hall="h1") == T0 + 100


def test_device_up_goes_to_zero_after_heartbeat_timeout() -> None:
    """device_up is 1 within the heartbeat timeout of the last online message, 0 after it."""
    m = Scraper(build(device_ev("tm-01", "online", T0)), T0 + HEARTBEAT)
    labels = {"hall": "h1", "device": "tm-01", "kind": "ticket_machine"}
    assert m.value("hallwatch_device_up", **labels) == 1
    m.now = T0 + HEARTBEAT + 1
    assert m.value("hallwatch_device_up", **labels) == 0
    m.state.apply(device_ev("tm-01", "online", T0 + HEARTBEAT + 0.5))
    assert m.value("hallwatch_device_up", **labels) == 1
    assert m.value("hallwatch_device_last_seen_timestamp_seconds", hall="h1", device="tm-01") == (
        T0 + HEARTBEAT + 0.5
    )


def test_device_offline_is_down_at_once() -> None:
    """A device that said offline is down even within its heartbeat timeout."""
    m = Scraper(build(device_ev("d1", "online", T0), device_ev("d1", "offline", T0 + 1)), T0 + 2)
    assert m.value("hallwatch_device_up", hall="h1", device="d1", kind="ticket_machine") == 0


def test_series_vanish_with_the_state() -> None:
    """Removing a window or a hall from the state removes its series on the next scrape."""
    state = busy_hall()
    for ev in (window_ev("w1", "open", T0, hall="h2"), issued("B1", T0, "贷款", hall="h2")):
        state.apply(ev)
    m = Scraper(state, T0 + 200)
    assert m.value("hallwatch_window_state", hall="h1", window="w2", state="open") == 1
    assert m.series("h2")

    del m.state.halls["h1"].windows["w2"]
    assert m.value("hallwatch_window_state", hall="h1", window="w2", state="open") is None
    assert m.value("hallwatch_window_serving", hall="h1", window="w2") is None
    assert m.value("hallwatch_window_state", hall="h1", window="w1", state="open") == 1

    del m.state.halls["h2"]
    assert m.series("h2") == []
    assert m.value("hallwatch_queue_waiting", hall="h2", service="贷款", priority="normal") is None
    assert m.series("h1")


def test_state_metrics_is_pure() -> None:
    """state_metrics gives the same families for the same state and now, and changes with now."""
    state = busy_hall()
    a = state_metrics(state, T0 + 200, HEARTBEAT)
    b = state_metrics(state, T0 + 200, HEARTBEAT)
    assert [f.samples for f in a] == [f.samples for f in b]
    c = state_metrics(state, T0 + 500, HEARTBEAT)
    assert [f.samples for f in a] != [f.samples for f in c]


def test_empty_state_has_no_hall_series() -> None:
    """Without halls there are no hall samples at all (only the hall-less over-limit counter)."""
    families = state_metrics(HallsState(), T0, HEARTBEAT)
    assert all(not f.samples for f in families if f.name != "hallwatch_events_over_limit")


def test_ingest_metrics_preinitialise_labels() -> None:
    """Every result and every rejection reason is exposed at 0 before anything happens."""
    registry = CollectorRegistry()
    ingest = IngestMetrics(registry)
    for result in ("accepted", "duplicate", "rejected"):
        assert registry.get_sample_value("hallwatch_events_total", {"result": result}) == 0
    for reason in Reason:
        assert (
            registry.get_sample_value("hallwatch_events_rejected_total", {"reason": reason.value})
            == 0
        )
    ingest.rejected.labels(Reason.BAD_TS.value).inc()
    ingest.events.labels("rejected").inc(2)
    assert registry.get_sample_value("hallwatch_events_rejected_total", {"reason": "bad_ts"}) == 1
    assert registry.get_sample_value("hallwatch_events_total", {"result": "rejected"}) == 2


def test_two_registries_do_not_share_ingest_metrics() -> None:
    """IngestMetrics registers nothing globally: two daemons in one process do not collide."""
    r1, r2 = CollectorRegistry(), CollectorRegistry()
    IngestMetrics(r1).events.labels("accepted").inc()
    IngestMetrics(r2)
    assert r1.get_sample_value("hallwatch_events_total", {"result": "accepted"}) == 1
    assert r2.get_sample_value("hallwatch_events_total", {"result": "accepted"}) == 0


def test_after_midnight_yesterdays_queue_and_headcount_read_zero():
    """Once `now` is in the next business day, the hall's gauges stop showing yesterday."""
    state = busy_hall()
    same_day = Scraper(state, T0 + 3600)
    assert same_day.value("hallwatch_hall_headcount", hall="h1") == 10
    assert (
        same_day.value("hallwatch_queue_waiting", hall="h1", service="提取", priority="green") == 1
    )
    next_day = Scraper(state, at("2026-11-27T00:05"))
    assert next_day.value("hallwatch_hall_headcount", hall="h1") == 0
    assert (
        next_day.value("hallwatch_queue_waiting", hall="h1", service="提取", priority="green") == 0
    )
    assert next_day.value("hallwatch_windows_open", hall="h1") == 2


def test_limits_keep_a_bad_device_from_exploding_the_series() -> None:
    """Services past the per-hall cap are not applied, so they add no series, and are counted."""
    state = HallsState(limits=Limits(services=3, windows=2))
    for i in range(10):
        state.apply(issued(f"A{i}", T0 + i, f"svc{i}"))
    for i in range(5):
        state.apply(window_ev(f"w{i}", "open", T0 + 20 + i, ("svc0",)))
    m = Scraper(state, T0 + 60)
    services = {ln.split('service="')[1].split('"')[0] for ln in m.series("h1") if "service=" in ln}
    assert services == {"svc0", "svc1", "svc2"}
    assert m.value("hallwatch_windows_open", hall="h1") == 2
    assert m.value("hallwatch_events_over_limit_total") == 7 + 3
