"""One voice at the store: the shared `alert_episodes` in a private PostgreSQL gives the second
instance to fire an episode the first one's start; SQLite (one instance) keeps its own."""

from __future__ import annotations

from pathlib import Path

from hallwatch.alerts.claims import ADOPT_S, PgOutbox
from hallwatch.alerts.outbox import Outbox

EP = ("h1", "queue_peak", "")


async def test_the_second_instance_takes_the_first_ones_start(pg_url: str) -> None:
    """b fires 1.7 s after a: a's start; its own start again: the same; after the episode
    ended a new one keeps its own start; one beyond ADOPT_S too; another hall is its own;
    pruned, none is left to take."""
    async with (
        PgOutbox(pg_url, instance="a") as a,
        PgOutbox(pg_url, instance="b") as b,
    ):
        assert await a.episode_start(*EP, 1000.0) == 1000.0
        assert await b.episode_start(*EP, 1001.7) == 1000.0
        assert await a.episode_start(*EP, 1000.0) == 1000.0  # a retried tick: the same
        assert await b.episode_start("h2", "queue_peak", "", 1001.7) == 1001.7
        assert await b.episode_start(*EP, 1000.0 + ADOPT_S + 1) == 1000.0 + ADOPT_S + 1
        await b.episode_ended(*EP, 1000.0)
        await a.episode_ended(*EP, 1000.0 + ADOPT_S + 1)
        assert await a.episode_start(*EP, 1100.0) == 1100.0  # ended: a new episode
        assert await b.episode_start(*EP, 1101.0) == 1100.0
        await a.prune(before=2000.0)  # old episodes go with the sent notifications
        assert await b.episode_start(*EP, 1101.0) == 1101.0


async def test_sqlite_keeps_its_own_start(tmp_path: Path) -> None:
    """The single-instance outbox returns the start it is given."""
    async with Outbox(tmp_path / "o.db") as o:
        assert await o.episode_start(*EP, 1000.0) == 1000.0
        assert await o.episode_start(*EP, 1001.7) == 1001.7
