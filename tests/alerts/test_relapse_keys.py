"""One voice through a relapse: an instance that was down while a cleared peak came back and
cleared again numbers the next relapse and the resolution after it as its peer does, because
the relapse count is kept in the shared episode record, not in each engine (#18 follow-up)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hallwatch.alerts.claims import PgOutbox
from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.view import HallView, Transition
from hallwatch.daemon.config.alerts import AlertSettings
from hallwatch.daemon.config.alerts_reader import read_alerts

from tests.alerts.pair import pair, started, stored_keys
from tests.alerts.test_alert_receiver import T0


def settings(relapse_s: float) -> AlertSettings:
    rules = {"for_s": 1, "clear_for_s": 2, "repeat_s": 0, "relapse_s": relapse_s}
    return read_alerts(
        {
            "wecom": {"url": "http://127.0.0.1:9/send", "robots": {"hall": {"key": "robot"}}},
            "roles": {"supervisor": {"wecom": ["hall"]}},
            "queue_peak": rules,
        },
        {},
    )


def view(t: float, tick_s: float = 1.0) -> HallView:
    """The hall at tick t (`tick_s` apart): a peak from 0 to 15, back from 25 to 35 and from 45
    to 55."""
    peak = t < 15 or 25 <= t < 35 or 45 <= t < 55
    return HallView(hall="h1", now=T0 + t * tick_s, headcount=25 if peak else 5)


def keys(ts: list[Transition]) -> list[str]:
    return [f"{t.alert_id}/{t.ordinal}-{t.state}" for t in ts]


# a, running all day: the peak fires, clears, relapses twice, each relapse clearing again.
STATES = ["1-firing", "1-resolved", "1-relapsed", "2-resolved", "2-relapsed", "3-resolved"]


@pytest.mark.parametrize("peer_stays", [True, False], ids=["a-stays", "a-leaves"])
@pytest.mark.parametrize("relapse", [40.0, 25.0], ids=["b-relapses", "b-fires-anew"])
@pytest.mark.parametrize("tick_s", [1.0, 10.0], ids=["1s", "10s"])
async def test_an_instance_down_through_a_relapse_numbers_the_next_as_its_peer(
    pg_url: str, tick_s: float, relapse: float, peer_stays: bool
) -> None:
    """b is killed at tick 20 (after the first resolution) and restarts at 40, having missed
    the first relapse and its end; both see the second relapse (b still in its relapse window,
    or past it and joining a's open episode as a new firing: with 10 s ticks 460 s after the
    episode began, past ADOPT_S). The outbox holds each of a's six keys once and nothing else,
    and b ends the episode under a's key; if a leaves at 50, b's resolution is the one stored
    (with per-engine counts b's was `1-` or `2-resolved`: a duplicate key, never sent)."""
    async with pair(pg_url, settings(relapse * tick_s)) as (a, b):
        made_a: list[Transition] = []
        made_b: list[Transition] = []
        for i in range(80):
            if peer_stays or i < 50:
                made_a += await a.evaluate([view(i, tick_s)])
            if i < 20 or i >= 40:
                made_b += await b.evaluate([view(i + 0.5, tick_s)])
            if i == 20:  # kill -9, and start again at 40 s as the last save left it
                b = await started(b.settings, b.outbox)
        rows = [k.removesuffix("/wecom/hall") for k in await stored_keys(a.outbox)]
    alert_id = made_a[0].alert_id
    assert rows == [f"{alert_id}/{s}" for s in STATES], rows
    late = [t for t in made_b if t.at >= T0 + 40 * tick_s and t.state == "resolved"]
    assert keys(late) == [f"{alert_id}/3-resolved"], keys(made_b)
    if peer_stays:
        assert keys(made_a) == rows


async def test_a_single_instance_restarted_after_a_relapse_numbers_the_same(
    tmp_path: Path,
) -> None:
    """Alone (SQLite), a daemon killed during the first relapse and restarted at once makes the
    keys one running all day makes: its relapse count is in its saved episode."""
    async with Outbox(tmp_path / "straight.db") as ob:
        straight = await started(settings(40.0), ob)
        ran = [t for i in range(80) for t in await straight.evaluate([view(i)])]
    async with Outbox(tmp_path / "restarted.db") as ob:
        before = await started(settings(40.0), ob)
        made = [t for i in range(30) for t in await before.evaluate([view(i)])]
        after = await started(settings(40.0), ob)
        made += [t for i in range(30, 80) for t in await after.evaluate([view(i)])]
        rows = [k.removesuffix("/wecom/hall") for k in await stored_keys(ob)]
    assert keys(made) == keys(ran) == rows
    assert [k.split("/")[1] for k in rows] == STATES


async def test_an_instance_behind_through_the_relapses_adds_nothing(pg_url: str) -> None:
    """b sees the hall 12 s late in event time (`last_event_at`, a backlog): each relapse and
    end it sees, a has already counted, and one relapse later; b takes their numbers from the
    event times in the shared record (not from the order it reaches them in), ends nothing a
    reopened, and stores nothing a did not."""
    async with pair(pg_url, settings(40.0)) as (a, b):
        made_b: list[Transition] = []
        for i in range(100):
            await a.evaluate([replace(view(i), last_event_at=T0 + i)])
            late = i + 0.5 - 12
            seen = replace(view(late), now=T0 + i + 0.5) if late >= 0 else view(20)
            made_b += await b.evaluate([replace(seen, last_event_at=T0 + late)])
        rows = [k.removesuffix("/wecom/hall") for k in await stored_keys(a.outbox)]
    alert_id = rows[0].split("/")[0]
    assert rows == [f"{alert_id}/{s}" for s in STATES], rows
    assert set(keys(made_b)) <= set(rows), keys(made_b)
    assert [t.state for t in made_b].count("resolved") == 3, keys(made_b)


async def test_the_shared_record_counts_each_relapse_once(pg_url: str) -> None:
    """Two instances marking one end or one relapse count it once, whatever their own count
    (`own`); an end reported late by an instance behind takes its own number and leaves the
    later relapse open; a row begun before the lists (NULL) keeps the engines' counts."""
    ep = ("h1", "queue_peak", "", 1000.0)
    async with PgOutbox(pg_url, instance="a") as a, PgOutbox(pg_url, instance="b") as b:
        assert await a.episode_start(*ep) == 1000.0
        assert await a.episode_ended(*ep, at=1100.0) == 1
        assert await b.episode_ended(*ep, at=1100.5) == 1
        assert await b.episode_reopened(*ep, at=1200.5) == 1
        assert await a.episode_reopened(*ep, at=1200.0) == 1  # the same relapse
        assert await a.episode_ended(*ep, at=1300.0, own=2) == 2
        assert await a.episode_reopened(*ep, at=1400.0, own=2) == 2
        assert await b.episode_ended(*ep, at=1300.5, own=2) == 2  # b behind: the first's end
        assert await b.episode_open(*ep)
        assert await b.episode_reopened(*ep, at=1400.5, own=1) == 2
        assert await b.episode_ended(*ep, at=1500.5, own=1) == 3  # b missed a relapse
        assert await a.episode_ended(*ep, at=1500.0, own=3) == 3
        await a.write("UPDATE alert_episodes SET relapses_at = NULL, ends_at = NULL")
        assert await b.episode_reopened(*ep, at=1600.0, own=7) == 7
        assert await a.episode_open(*ep)
        assert await a.episode_ended(*ep, at=1700.0, own=8) == 8
        assert not await b.episode_open(*ep)
