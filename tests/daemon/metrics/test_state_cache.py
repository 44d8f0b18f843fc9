"""The state collector keeps a hall's series between scrapes while nothing reached the hall."""

from __future__ import annotations

from pathlib import Path

from hallwatch.daemon.config.sections import StoreSettings
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.main import Daemon
from hallwatch.daemon.metrics.exposition import plain
from hallwatch.daemon.metrics.families import StateCollector, state_metrics
from prometheus_client import CollectorRegistry, generate_latest

from tests.factories import at, device_ev, issued, window_ev


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _daemon(tmp_path: Path, clock: Clock) -> Daemon:
    d = Daemon(Settings(store=StoreSettings(path=str(tmp_path / "h.db"))), clock=clock)
    t0 = clock.t
    for hall in ("h1", "h2", "h3"):
        d.pipeline.process(window_ev("w1", "open", t0 - 600, ("gjj",), hall=hall))
        d.pipeline.process(device_ev("tm-1", "online", t0 - 100, hall=hall))
        for i in range(5):
            d.pipeline.process(issued(f"A{i}", t0 - 300 + i, hall=hall))
    return d


def _text(collector: StateCollector) -> bytes:
    """The collector's exposition as the daemon writes it (its families carry text only)."""
    return plain(collector.collect())


def _fresh(d: Daemon, clock: Clock) -> bytes:
    reg = CollectorRegistry()
    state, now, hb = d.state, clock(), d.settings.hall.heartbeat_timeout_s

    class Fresh:
        def collect(self):  # type: ignore[no-untyped-def]
            return iter(state_metrics(state, now, hb))

    reg.register(Fresh())  # type: ignore[arg-type]
    return generate_latest(reg)


def test_kept_series_are_what_a_fresh_build_gives(tmp_path: Path) -> None:
    """Scrapes with nothing changed are byte-identical; as the clock moves (head-of-line wait,
    a heartbeat running out) and after an event, the kept series equal a build from scratch."""
    clock = Clock(at("2026-11-26T10:00"))
    d = _daemon(tmp_path, clock)
    hb = d.settings.hall.heartbeat_timeout_s
    kept = StateCollector(lambda: d.state, clock, hb, lambda: d.pipeline.changes)
    first = _text(kept)
    assert _text(kept) == first == _fresh(d, clock)
    clock.t += hb  # the head of line waited longer; tm-1 is past its heartbeat
    moved = _text(kept)
    assert moved != first and moved == _fresh(d, clock)
    assert b'hallwatch_device_up{device="tm-1",hall="h1",kind="ticket_machine"} 0.0' in moved
    d.pipeline.process(issued("B1", clock.t - 1, hall="h2"))
    after = _text(kept)
    assert after == _fresh(d, clock)
    changed = set(after.splitlines()) ^ set(moved.splitlines())
    assert changed and all(b'hall="h2"' in line for line in changed)


def test_a_hall_no_event_reached_is_not_rebuilt(tmp_path: Path) -> None:
    """Only the hall an event reached is built again at the next scrape; the others are kept."""
    clock = Clock(at("2026-11-26T10:00"))
    d = _daemon(tmp_path, clock)
    kept = StateCollector(
        lambda: d.state, clock, d.settings.hall.heartbeat_timeout_s, lambda: d.pipeline.changes
    )
    _text(kept)
    before = dict(kept._cache)
    d.pipeline.process(issued("B1", clock.t, hall="h2"))
    _text(kept)
    assert kept._cache["h1"] is before["h1"] and kept._cache["h3"] is before["h3"]
    assert kept._cache["h2"] is not before["h2"]


def test_warming_builds_each_halls_text_ahead_of_the_first_scrape(tmp_path: Path) -> None:
    """`warm` builds at least one hall's text a call until every hall is kept (the daemon calls
    it in slices after its first tick); the first scrape then builds nothing and gives the text
    of a build from scratch."""
    clock = Clock(at("2026-11-26T10:00"))
    d = _daemon(tmp_path, clock)
    hb = d.settings.hall.heartbeat_timeout_s
    kept = StateCollector(lambda: d.state, clock, hb, lambda: d.pipeline.changes)
    assert [kept.warm(0.0) for _ in range(3)] == [False, False, True]
    built = dict(kept._cache)
    assert sorted(built) == ["h1", "h2", "h3"]
    assert _text(kept) == _fresh(d, clock)
    assert all(kept._cache[h] is built[h] for h in built)  # nothing built again by the scrape
    d.pipeline.process(issued("B1", clock.t, hall="h2"))
    assert kept.warm(1.0) and kept._cache["h2"] is not built["h2"]
    assert kept._cache["h1"] is built["h1"]


def test_a_tick_warms_a_changed_hall_once_it_has_settled(tmp_path: Path) -> None:
    """With `settled_s`, a hall whose state changed is rebuilt only once it has kept that state
    for `settled_s` (a busy hall is not rebuilt on every tick, only by the scrape); a quiet one
    is then ready before the next scrape, which builds nothing."""
    clock = Clock(at("2026-11-26T10:00"))
    d = _daemon(tmp_path, clock)
    hb = d.settings.hall.heartbeat_timeout_s
    kept = StateCollector(lambda: d.state, clock, hb, lambda: d.pipeline.changes)
    assert kept.warm(1.0)
    built = dict(kept._cache)
    d.pipeline.process(issued("B1", clock.t, hall="h2"))
    assert kept.warm(1.0, settled_s=10.0) and kept._cache["h2"] is built["h2"]  # just changed
    clock.t += 5
    assert kept.warm(1.0, settled_s=10.0) and kept._cache["h2"] is built["h2"]  # 5 s: not yet
    clock.t += 6
    d.pipeline.process(issued("B2", clock.t, hall="h3"))  # h3 changes again: stays as it was
    assert kept.warm(1.0, settled_s=10.0)
    assert kept._cache["h2"] is not built["h2"] and kept._cache["h3"] is built["h3"]
    rebuilt = kept._cache["h2"]
    _text(kept)  # the scrape builds h3 only
    assert kept._cache["h2"] is rebuilt and kept._cache["h3"] is not built["h3"]
