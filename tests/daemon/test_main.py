"""hallwatch.daemon.main: the composition's own decisions (what the alert tick reads)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.service import Alerts
from hallwatch.daemon.base.tasks import cancel_all
from hallwatch.daemon.config.sections import StoreSettings
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.estimate.advice import Advice, Steps
from hallwatch.daemon.main import Daemon
from hallwatch.daemon.pipeline.schedule import ADVICE_MIN_S, SWEEP_S, last_sweep

from tests.factories import at, issued, window_ev


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_the_alert_tick_never_reads_advice_cached_by_a_scrape(tmp_path: Path) -> None:
    """A scrape (or the hall screen) caches staffing advice for a tick; the alert tick a second
    later computes its own, so what it notifies does not depend on when Prometheus scraped, nor
    on a cache a restart emptied (found by the simulation test)."""
    t0 = at("2026-11-26T10:00")
    clock = Clock(t0)
    d = Daemon(Settings(store=StoreSettings(path=str(tmp_path / "h.db"))), clock=clock)
    d.pipeline.process(window_ev("w1", "open", t0 - 600, ("gjj",)))
    scraped = d.advice("h1")  # a scrape: an empty queue
    assert scraped is not None and scraped.services[0].estimated_wait_s == 0.0
    for i in range(30):
        d.pipeline.process(issued(f"A{i}", t0 + i * 0.01))
    d.lane.drain(publish=False)
    clock.t = t0 + 1

    async def tick() -> None:
        async with Outbox(tmp_path / "h.db") as outbox:
            d.alerts = Alerts(d.alert_settings, outbox, clock=clock)
            await d.alerts.start()
            await d.tick(clock.t)

    asyncio.run(tick())
    assert d.advice("h1") is not scraped  # the tick's own advice, reused by the next scrape
    (episode,) = d.alerts.engine.episodes.values()
    assert episode.alert == "queue_peak" and episode.phase == "pending"


def test_shutdown_cancels_again_a_task_that_lost_its_cancel() -> None:
    """A task that swallows one cancel (the Python 3.11 wait_for race) still stops at shutdown."""

    async def run() -> tuple[int, bool]:
        swallowed = 0

        async def loop_forever() -> None:
            nonlocal swallowed
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    if swallowed:
                        raise
                    swallowed += 1  # as wait_for does when the future completed meanwhile

        task = asyncio.create_task(loop_forever())
        await asyncio.sleep(0)
        await cancel_all([task], within=5.0)
        return swallowed, task.cancelled()

    assert asyncio.run(run()) == (1, True)


def test_a_quiet_hall_gets_its_status_keep_alive_every_30_s_and_no_more(tmp_path: Path) -> None:
    """With no event, the tick republishes a hall's retained status every 30 s (the contract's
    keep-alive) at the hall's own sweep instant, not on every tick; an event gets it out on the
    next tick."""
    t0 = at("2026-11-26T10:00")
    clock = Clock(t0)
    d = Daemon(Settings(store=StoreSettings(path=str(tmp_path / "h.db"))), clock=clock)
    d.pipeline.process(window_ev("w1", "open", t0 - 600, ("gjj",)))
    sent: list[float] = []

    async def ticks() -> None:
        async with Outbox(tmp_path / "h.db") as outbox:
            d.alerts = Alerts(d.alert_settings, outbox, clock=clock)
            await d.alerts.start()
            for k in range(61):
                clock.t = t0 + 2 * k
                if k == 40:
                    d.pipeline.process(issued("A1", clock.t))
                before = d.outputs._queue.qsize()
                await d.tick(clock.t)
                sent.extend([clock.t - t0] * (d.outputs._queue.qsize() - before))

    asyncio.run(ticks())
    sweeps = {2 * k for k in range(1, 61) if last_sweep("h1", t0 + 2 * k) > t0 + 2 * k - 2}
    assert sent == sorted({0, 80} | sweeps)
    assert len(sweeps) == 4 and all(b - a <= SWEEP_S for a, b in itertools.pairwise(sent))


def test_the_sweep_simulates_again_only_halls_where_someone_waits(tmp_path: Path) -> None:
    """Over 2 minutes with no event, the tick's sweep runs the forward simulation again for a
    hall with a queue (its wait grows with the clock) once per 30 s, and not for a hall where
    nobody waits (it keeps its advice until an event or ADVICE_QUIET_S): 500 quiet halls idled
    at 17 % of a core re-simulating every sweep."""
    t0 = at("2026-11-26T10:00")
    clock = Clock(t0)
    d = Daemon(Settings(store=StoreSettings(path=str(tmp_path / "h.db"))), clock=clock)
    for hall in ("quiet", "queue"):
        d.pipeline.process(window_ev("w1", "open", t0 - 600, ("gjj",), hall=hall))
    for i in range(5):
        d.pipeline.process(issued(f"A{i}", t0 - 60 + i, hall="queue"))
    d.lane.drain(publish=False)
    runs: list[str] = []
    compute, steps = d._advice._compute, d._advice._steps
    assert steps is not None

    def counted(hall: str, now: float) -> Advice | None:  # a scrape's
        runs.append(hall)
        return compute(hall, now)

    def counted_steps(hall: str, now: float) -> Steps | None:  # the tick's
        runs.append(hall)
        return steps(hall, now)

    d._advice._compute = counted  # type: ignore[method-assign]
    d._advice._steps = counted_steps

    async def ticks() -> None:
        async with Outbox(tmp_path / "h.db") as outbox:
            d.alerts = Alerts(d.alert_settings, outbox, clock=clock)
            await d.alerts.start()
            for k in range(61):
                clock.t = t0 + 2 * k
                await d.tick(clock.t)
                d.advice("quiet")  # a scrape reuses the tick's
                d.advice("queue")

    asyncio.run(ticks())
    assert runs.count("quiet") == 1
    assert 4 <= runs.count("queue") <= 5  # the first tick, then each sweep in 120 s


def test_a_hall_changing_every_tick_gets_new_advice_at_most_every_advice_min_s(
    tmp_path: Path,
) -> None:
    """A ticket every tick for 14 s renews the hall's advice (its forward simulations) every
    ADVICE_MIN_S, not on each of the 7 ticks (at 1,000 events/s over 100 halls that was 1.5 s
    of every 2 s tick); the view is still built on every tick, and after the last event the
    tick comes back for the advice ADVICE_MIN_S after the stale one, though no event follows."""
    t0 = at("2026-11-26T10:00")
    clock = Clock(t0)
    d = Daemon(Settings(store=StoreSettings(path=str(tmp_path / "h.db"))), clock=clock)
    for w in ("w1", "w2", "w3", "w4"):  # seven tickets, four windows: no alert episode
        d.pipeline.process(window_ev(w, "open", t0 - 600, ("gjj",)))
    runs: list[float] = []
    views: list[int] = []
    compute, steps = d._advice._compute, d._advice._steps
    assert steps is not None

    def counted(hall: str, now: float) -> Advice | None:  # a scrape's
        runs.append(now - t0)
        return compute(hall, now)

    def counted_steps(hall: str, now: float) -> Steps | None:  # the tick's
        runs.append(now - t0)
        return steps(hall, now)

    d._advice._compute = counted  # type: ignore[method-assign]
    d._advice._steps = counted_steps

    async def ticks() -> None:
        async with Outbox(tmp_path / "h.db") as outbox:
            d.alerts = Alerts(d.alert_settings, outbox, clock=clock)
            await d.alerts.start()
            for k in range(1, 13):
                clock.t = t0 + 2 * k
                if k <= 7:
                    d.pipeline.process(issued(f"A{k}", clock.t - 1))
                    d.lane.drain(publish=False)
                await d.tick(clock.t)
                views.append(d.tick_halls._value.get())  # type: ignore[attr-defined]

    asyncio.run(ticks())
    assert views[:7] == [1] * 7  # a view on every tick with an event
    # New, then ADVICE_MIN_S later, then ADVICE_MIN_S later again for the last event (at 14 s);
    # whatever follows is the hall's sweep (someone waits).
    assert runs[:3] == [2.0, 12.0, 12.0 + ADVICE_MIN_S]
    assert not d.alerts.engine.episodes  # (else the tick comes back for the episode anyway)
    answer = d.advice("h1")
    assert answer is not None and sum(sa.waiting for sa in answer.services) == 7
