"""The one processing path of a stored event (state, then estimator), live and at start-up."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from hallwatch.daemon.base.ratelog import RateLimitedLog
from hallwatch.daemon.config.sections import StoreSettings
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.core.state import HallsState, Limits, Outcome
from hallwatch.daemon.estimate.model import Estimator
from hallwatch.daemon.main import Daemon
from hallwatch.daemon.pipeline.lane import EstimateLane
from hallwatch.daemon.pipeline.process import Faults, Pipeline, Stage
from hallwatch.daemon.store.events import NewEvent, Store
from hallwatch.sensors.events import Event

from tests.factories import at, issued, ticket_ev, window_ev


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_refused_events_never_reach_the_estimator(caplog: pytest.LogCaptureFixture) -> None:
    """1,000 stale-day tickets and a flood past the ticket cap go through the live pipeline
    without one log line or fault (each once logged a 12-line traceback from the estimator);
    only the events the state applied reach the estimator lane."""
    t0 = at("2026-11-27T09:00")
    clock = Clock(t0 + 60)
    state = HallsState(limits=Limits(tickets=50))
    faults = Faults(clock)
    lane = EstimateLane(Estimator(), lambda: state, lambda _out: None, clock, faults=faults)
    pushed: list[Event] = []
    pipeline = Pipeline(lambda: state, lambda ev: (pushed.append(ev), lane.push(ev)), faults)
    outcomes = [pipeline.process(window_ev("w1", "open", t0, ("gjj",)))]
    outcomes += [pipeline.process(issued(f"A{i}", t0 + i / 100)) for i in range(60)]
    yesterday = at("2026-11-26T16:00")
    with caplog.at_level(logging.WARNING):
        for i in range(1000):
            kind = ("issued", "called", "completed", "cancelled")[i % 4]
            outcomes.append(pipeline.process(ticket_ev(kind, f"Y{i}", yesterday, window="w1")))
        lane.drain()
    assert caplog.records == []
    assert outcomes.count(Outcome.APPLIED) == 51 == len(pushed)
    assert outcomes.count(Outcome.OVER_LIMIT) == 10
    assert outcomes.count(Outcome.STALE_DAY) == 1000
    assert faults.failed == dict.fromkeys(Stage, 0)


def test_faults_are_counted_and_logged_with_a_rate_limit(caplog: pytest.LogCaptureFixture) -> None:
    """A stage failing on 1,000 events writes one line per 10 s, the next one saying how many
    were held back, and counts every one."""
    clock = Clock(1000.0)
    counted: list[Stage] = []
    faults = Faults(clock, counted.append)
    with caplog.at_level(logging.WARNING, logger="hallwatch.pipeline"):
        for i in range(1000):
            faults.record(Stage.ESTIMATOR, f"h1/e{i}", "boom", RuntimeError("boom"))
        clock.t += 10.0
        faults.record(Stage.ESTIMATOR, "h1/last", "boom", RuntimeError("boom"))
        faults.record(Stage.STATE, "h1/s", "bang", RuntimeError("bang"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert lines[1].endswith("(999 more suppressed)") and "h1/last" in lines[1]
    assert lines[2].startswith("state stage failed on h1/s")
    assert len(counted) == 1002 and faults.failed[Stage.ESTIMATOR] == 1001


def test_rate_limited_log_is_per_key() -> None:
    """Keys are limited independently; a clock going backwards does not silence a key."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("hallwatch.test-ratelog")
    logger.addHandler(Keep())
    logger.propagate = False
    rl = RateLimitedLog(logger, every=10.0)
    assert rl.warn("a", 100.0, "a1") and rl.warn("b", 100.0, "b1")
    assert not rl.warn("a", 105.0, "a2")
    assert rl.warn("a", 50.0, "a3")  # the clock stepped back: not within the interval
    assert records == ["a1", "b1", "a3 (1 more suppressed)"]


def _payload(ev: Event) -> tuple[str, bytes]:
    assert ev.__class__.__name__ in ("TicketEvent", "WindowEvent")
    body: dict[str, object] = {"id": ev.id, "ts": int(ev.ts * 1000)}
    if hasattr(ev, "ticket"):
        body |= {"type": ev.type, "ticket": ev.ticket}  # type: ignore[union-attr]
        for k in ("service", "window"):
            if getattr(ev, k) is not None:
                body[k] = getattr(ev, k)
        return f"hall/{ev.hall}/ticket", json.dumps(body, ensure_ascii=False).encode()
    body |= {"state": ev.state, "services": list(ev.services)}  # type: ignore[union-attr]
    return f"hall/{ev.hall}/window/{ev.window}", json.dumps(body, ensure_ascii=False).encode()


def test_start_up_replay_equals_the_live_path(tmp_path: Path) -> None:
    """A daemon restarted on a database of two days (midnight included, a stale-stamped ticket,
    no snapshot) has the state and the estimator's learning of one that applied the same events
    live, event by event."""
    d1, d2 = at("2026-11-26T09:00"), at("2026-11-27T09:00")
    events: list[Event] = [window_ev("w1", "open", d1, ("gjj",))]
    for base in (d1, d2):
        for i in range(1, 6):
            events.append(issued(f"A00{i}", base + 10 * i))
        for i in range(1, 4):
            events.append(ticket_ev("called", f"A00{i}", base + 100 * i, window="w1"))
            events.append(ticket_ev("completed", f"A00{i}", base + 100 * i + 80, window="w1"))
    events.insert(20, issued("A003", d1 + 30))  # late, and yesterday's by then
    db = tmp_path / "h.db"
    settings = Settings(store=StoreSettings(path=str(db)))
    clock = Clock(d2 + 3600)
    twin = Daemon(settings, clock=clock)
    for ev in events:
        twin.pipeline.process(ev)
        twin.lane.drain(publish=False)

    async def restart() -> Daemon:
        async with Store(db) as store:
            rows = []
            for ev in events:
                topic, payload = _payload(ev)
                rows.append(NewEvent(ev.hall, ev.id, topic, ev.ts, ev.ts, payload))
            await store.commit_batch(rows)
        d = Daemon(settings, clock=clock)
        async with Store(db) as store:
            await d._restore(store)
        return d

    restarted = asyncio.run(restart())
    from hallwatch.daemon.core.state import encode

    assert encode(restarted.state) == encode(twin.state)
    assert restarted.estimator.learned.service_logs == twin.estimator.learned.service_logs
    assert restarted.estimator.learned.age_bins == twin.estimator.learned.age_bins
    assert restarted.faults.failed == dict.fromkeys(Stage, 0)
    assert restarted.state.halls["h1"].stale_events == 1
