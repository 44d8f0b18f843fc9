"""/metrics through SafeRegistry.render (lines kept between scrapes) is byte for byte the text
prometheus_client's generate_latest writes."""

from __future__ import annotations

from pathlib import Path

from hallwatch.daemon.config.sections import StoreSettings
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.estimate.export import metric_families
from hallwatch.daemon.main import Daemon
from hallwatch.daemon.metrics.collectors import SafeRegistry
from hallwatch.daemon.metrics.families import StateCollector, state_metrics
from hallwatch.daemon.metrics.live import LiveCollector
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import Metric

from tests.factories import at, device_ev, issued, window_ev


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _reference(d: Daemon, now: float) -> bytes:
    """generate_latest over the daemon's collectors in their order, those that keep their text
    (and give no samples) replaced by the same families built from scratch, with samples."""
    hb = d.settings.hall.heartbeat_timeout_s

    class Built:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        def collect(self) -> list[Metric]:
            if isinstance(self.inner, StateCollector):
                return state_metrics(d.state, now, hb)
            fams = list(self.inner.collect())  # type: ignore[attr-defined]
            if isinstance(self.inner, LiveCollector):  # the estimator's first, then its own
                built = metric_families(d.estimator.learned, d.state, now, d.advice)
                fams = built + fams[len(built) :]
            return fams

    ref = CollectorRegistry(auto_describe=False)
    for wrapped in list(d.registry._collector_to_names):
        ref.register(Built(getattr(wrapped, "inner", wrapped)))  # type: ignore[arg-type]
    return generate_latest(ref)


def test_render_is_generate_latest_as_the_clock_and_the_state_move(tmp_path: Path) -> None:
    """The daemon's whole registry (state, estimator, ingest, alert families) rendered with kept
    text equals generate_latest of the same families built from scratch at every scrape:
    unchanged, after the clock moved (head-of-line waits, a heartbeat running out), after
    events, after a counter and a histogram moved."""
    clock = Clock(at("2026-11-26T10:00"))
    d = Daemon(Settings(store=StoreSettings(path=str(tmp_path / "h.db"))), clock=clock)
    t0 = clock.t
    for hall in ("h1", "h2"):
        d.pipeline.process(window_ev("w1", "open", t0 - 600, ("gjj",), hall=hall))
        d.pipeline.process(device_ev("tm-1", "online", t0 - 100, hall=hall))
        for i in range(4):
            d.pipeline.process(issued(f"A{i}", t0 - 300 + i, hall=hall))
    d.lane.drain(publish=False)
    reg = d.registry
    texts = []
    for step in range(4):
        if step == 1:
            clock.t += d.settings.hall.heartbeat_timeout_s
        if step == 2:
            d.pipeline.process(issued("B1", clock.t - 1, hall="h2"))
            d.pipeline.process(window_ev("w2", "open", clock.t - 1, ("gjj",), hall="h3"))
            d.lane.drain(publish=False)
        if step == 3:
            d.metrics.events.labels("accepted").inc(3)
            d.metrics.commit.observe(0.003)
        text = reg.render()
        assert text == _reference(d, clock.t), step
        texts.append(text)
    assert len(set(texts)) == 4  # each step changed the text
    assert b'hallwatch_queue_waiting{hall="h3"' in texts[2]
    assert b"hallwatch_queue_oldest_wait_seconds" in texts[0]


def test_render_writes_counters_histograms_and_odd_label_values_as_generate_latest() -> None:
    """Label values needing escapes (quote, backslash, newline, Chinese), counters and histogram
    buckets: the same text, first scrape and second."""
    reg = SafeRegistry(lambda: 0.0)
    c = Counter("x_events", "Events.", ["what"], registry=reg)
    c.labels('a "quoted" \\ back\nslash').inc()
    c.labels("大厅").inc(2)
    h = Histogram("x_seconds", "Time.", buckets=(0.1, 1), registry=reg)
    h.observe(0.5)
    assert reg.render() == generate_latest(reg)
    h.observe(2)
    assert reg.render() == generate_latest(reg)


def test_kept_estimator_families_are_what_a_fresh_build_gives(tmp_path: Path) -> None:
    """The estimator's families, kept between scrapes, equal a build from scratch after new
    tickets reach a hall and after the clock renews its advice; unchanged, they are reused."""
    clock = Clock(at("2026-11-26T10:00"))
    d = Daemon(Settings(store=StoreSettings(path=str(tmp_path / "h.db"))), clock=clock)
    d.pipeline.process(window_ev("w1", "open", clock.t - 600, ("gjj",), hall="h1"))
    d.lane.drain(publish=False)

    class Fresh:
        def collect(self):  # type: ignore[no-untyped-def]
            return d.estimator.metrics(d.state, clock(), d.advice)

    def estimator_lines(text: bytes) -> list[bytes]:
        names = (b"hallwatch_estimated_wait", b"hallwatch_staffing", b"hallwatch_closing")
        return [line for line in text.splitlines() if line.startswith(names)]

    fresh = CollectorRegistry()
    fresh.register(Fresh())  # type: ignore[arg-type]
    first = estimator_lines(d.registry.render())
    assert first and first == estimator_lines(generate_latest(fresh))
    for i in range(8):
        d.pipeline.process(issued(f"A{i}", clock.t - 30 + i, hall="h1"))
    d.lane.drain(publish=False)
    clock.t += 600  # past every cache of the advice
    after = estimator_lines(d.registry.render())
    assert after != first and after == estimator_lines(generate_latest(fresh))
