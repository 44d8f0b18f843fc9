"""The daemon's own collector (metrics/live.py): the estimator's series kept hall by hall."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.service import Alerts
from hallwatch.daemon.config.sections import StoreSettings
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.estimate.export import metric_families
from hallwatch.daemon.main import Daemon
from hallwatch.daemon.metrics.exposition import plain
from hallwatch.daemon.metrics.live import LiveCollector

from tests.factories import at, issued, ticket_ev, window_ev

ESTIMATOR = (
    "hallwatch_estimated_wait_seconds",
    "hallwatch_estimate_mae_seconds",
    "hallwatch_offpeak_wait_seconds",
    "hallwatch_staffing_extra_windows",
    "hallwatch_estimate_error_seconds",
)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _text(collect: object) -> list[str]:
    """The estimator's lines of a registry over `collect`, in order."""

    lines = plain(collect()).decode().splitlines()  # type: ignore[operator]
    return sorted(ln for ln in lines if ln.startswith(ESTIMATOR))


def _ticked(tmp_path: Path, clock: Clock, halls: tuple[str, ...], *, called: bool) -> Daemon:
    """A daemon whose `halls` each have a window and four tickets (the first called when
    `called`), after one alert tick (so the tick holds each hall's advice)."""
    t0 = clock.t
    d = Daemon(Settings(store=StoreSettings(path=str(tmp_path / "h.db"))), clock=clock)
    for hall in halls:
        d.pipeline.process(window_ev("w1", "open", t0 - 600, ("gjj",), hall=hall))
        for i in range(4):
            d.pipeline.process(issued(f"A{i}", t0 - 300 + i, hall=hall))
        if called:
            d.pipeline.process(ticket_ev("called", "A0", t0 - 200, window="w1", hall=hall))
    d.lane.drain(publish=False)

    async def tick() -> None:
        async with Outbox(tmp_path / "h.db") as outbox:
            d.alerts = Alerts(d.alert_settings, outbox, clock=clock)
            await d.alerts.start()
            await d.tick(clock.t)

    asyncio.run(tick())
    return d


def test_kept_estimator_series_equal_a_fresh_build_and_only_a_changed_hall_is_rebuilt(
    tmp_path: Path,
) -> None:
    """After a tick, the collector's estimator series are what a build from scratch gives; an
    event in one hall rebuilds that hall's text only, and the text still equals a fresh build."""
    t0 = at("2026-11-26T10:00")
    clock = Clock(t0)
    d = _ticked(tmp_path, clock, ("h1", "h2", "h3"), called=True)
    live = LiveCollector(d)

    def fresh() -> object:
        return metric_families(d.estimator.learned, d.state, clock.t, d.advice)

    first = _text(live.collect)
    assert first == _text(fresh) and any("offpeak" in ln for ln in first)
    kept = dict(live._halls)
    assert sorted(kept) == ["h1", "h2", "h3"]
    d.pipeline.process(ticket_ev("called", "A1", t0 + 1, window="w1", hall="h2"))
    d.lane.drain(publish=False)
    again = _text(live.collect)
    assert live._halls["h1"] is kept["h1"] and live._halls["h3"] is kept["h3"]
    assert live._halls["h2"] is not kept["h2"]
    assert again == _text(fresh) and again != first  # h2's error figures moved


def test_warming_builds_what_the_scrape_would_and_waits_for_a_hall_to_settle(
    tmp_path: Path,
) -> None:
    """`warm` builds every hall whose advice the tick holds (the scrape then builds nothing and
    its text equals a fresh build); later a changed hall is rebuilt by `warm` only once its
    state has been still for `settled_s`."""
    t0 = at("2026-11-26T10:00")
    clock = Clock(t0)
    d = _ticked(tmp_path, clock, ("h1", "h2"), called=False)
    live = LiveCollector(d)
    assert live.warm(1.0) and sorted(live._halls) == ["h1", "h2"]
    built = dict(live._halls)
    assert _text(live.collect) == _text(
        lambda: metric_families(d.estimator.learned, d.state, clock.t, d.advice)
    )
    assert all(live._halls[h] is built[h] for h in built)  # the scrape built nothing
    d.pipeline.process(ticket_ev("called", "A0", t0 + 1, window="w1", hall="h2"))
    d.lane.drain(publish=False)
    assert live.warm(1.0, settled_s=10.0) and live._halls["h2"] is built["h2"]
    clock.t += 11
    assert live.warm(1.0, settled_s=10.0) and live._halls["h2"] is not built["h2"]
    assert live._halls["h1"] is built["h1"]
