"""The overview across shards in parts (daemon/web/overview_share.py): the merge of this
instance's rows with the shared table's, the change test that decides a write, the shared table
on a private PostgreSQL (a pair's two writes are one row), a shard's subscriptions, and SQLite
unchanged."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hallwatch.daemon.config.alerts import AlertSettings
from hallwatch.daemon.config.sections import StoreSettings
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.mqtt.ingest import subscriptions
from hallwatch.daemon.web.overview_model import overview_model
from hallwatch.daemon.web.overview_share import (
    FORGET_S,
    OverviewShare,
    OverviewTable,
    Shared,
    _fingerprint,
    opened,
    with_shards,
)

from tests.daemon.web.test_overview_model import NOW, RULES, T0, people, views
from tests.factories import at, door_ev

TZ = "Asia/Shanghai"


def remote(hall: str, headcount: int, instance: str = "b", at_: float = NOW) -> Shared:
    """A row as another shard wrote it (the fields the merge and the ranking read)."""
    row: dict[str, Any] = {
        "hall": hall,
        "name": hall,
        "pressure": headcount / 20,
        "level": "peak" if headcount >= 20 else "normal",
        "headcount": headcount,
        "waiting": 0,
        "uncovered": [],
        "alerts": [],
        "alerts_unacked": 0,
        "outage": None,
        "callbacks": {"pending": 0, "notified": 0},
        "complaints": {"open": 0, "due_soon": 0, "overdue": 0},
    }
    return Shared(hall, instance, at_, row)


def test_own_halls_from_memory_others_from_the_table_ranked_together_stale_marked() -> None:
    """A hall this instance holds is its own row even when the table has one (another writer's,
    older); another hall comes from the table, ranked among them; one written more than
    `stale_after_s` ago is stale, with the writer and its last update in Chinese."""
    st = HallsState(tz=TZ)
    people(st, "h1", 30)
    mine = overview_model(st, views(st), (), NOW, rules=RULES)
    shared = [remote("h1", 99, "old"), remote("h2", 50), remote("h3", 10, "c", NOW - 7)]
    got = with_shards(mine, st.halls, shared, instance="a", db_now=NOW, stale_after_s=6.0, tz=TZ)
    by = {r["hall"]: r for r in got["halls"]}
    assert [r["hall"] for r in got["halls"]] == ["h2", "h1", "h3"]
    assert [r["rank"] for r in got["halls"]] == [1, 2, 3]
    assert by["h1"]["headcount"] == 30 and by["h1"]["instance"] == "a"
    assert by["h2"]["instance"] == "b" and not by["h2"]["stale"]
    assert by["h3"]["stale"] and by["h3"]["stale_text"] == "数据已过时（实例 c 最后更新 09:29）"
    assert got["totals"]["halls"] == 3 and got["totals"]["headcount"] == 90
    assert got["totals"]["stale"] == 1 and got["totals"]["peak"] == 2
    at_limit = with_shards(
        mine, st.halls, shared, instance="a", db_now=NOW - 1, stale_after_s=6, tz=TZ
    )
    assert not {r["hall"]: r for r in at_limit["halls"]}["h3"]["stale"]


def test_a_row_is_rewritten_when_it_changed_not_as_seconds_of_waiting_pass() -> None:
    """The endured wait's seconds alone do not make a write; its minutes or a headcount do."""
    row: dict[str, Any] = {"headcount": 3, "longest_endured": {"wait_s": 61, "wait_min": 2}}
    later = {**row, "longest_endured": {"wait_s": 75, "wait_min": 2}}
    assert _fingerprint(row) == _fingerprint(later)
    assert _fingerprint(row) != _fingerprint({**row, "headcount": 4})
    assert _fingerprint(row) != _fingerprint(
        {**later, "longest_endured": {"wait_s": 121, "wait_min": 3}}
    )


async def test_a_pair_writes_one_row_per_hall_last_writer_wins(pg_url: str) -> None:
    """Both instances of a pair write h1: the table holds one row, the last writer's; a read
    since a time gets only rows written from then on (the database's clock); a row that is not
    an overview row (another version's, garbage) is left out, not a failure."""

    def body(hall: str, n: int) -> tuple[str, str]:
        return hall, json.dumps(remote(hall, n).row)

    a_settings = StoreSettings(url=pg_url, instance="a")
    async with opened(a_settings) as a, opened(StoreSettings(url=pg_url, instance="b")) as b:
        assert a is not None and b is not None
        await a.upsert("a", [body("h1", 1), body("h2", 2), ("h3", "{oops"), ("h4", '{"x": 1}')])
        first, rows = await b.since(0.0)
        assert sorted((s.hall, s.instance, s.row["headcount"]) for s in rows) == [
            ("h1", "a", 1),
            ("h2", "a", 2),
        ]
        await b.upsert("b", [body("h1", 1)])
        now, rows = await a.since(first)
        assert [(s.hall, s.instance) for s in rows] == [("h1", "b")]
        assert now >= first and rows[0].written_at >= first
        async with a.db.execute("SELECT count(*) FROM hall_overview WHERE hall = 'h1'") as cur:
            assert (await cur.fetchone())[0] == 1


def test_a_shard_subscribes_to_its_halls_topics_only() -> None:
    """`mqtt.halls` set: each input filter per hall, none for other halls; empty: every hall."""
    assert ("hall/+/ticket", 1) in subscriptions("hall")
    mine = [t for t, _ in subscriptions("hall", ["west", "east"])]
    assert "hall/east/ticket" in mine and "hall/west/door/+" in mine
    assert len(mine) == 2 * len(subscriptions("hall")) and not any("/+/" in t[:6] for t in mine)
    assert all(t.split("/")[1] in ("east", "west") for t in mine)


async def test_on_sqlite_nothing_is_shared_and_the_overview_is_unchanged() -> None:
    """No `store.url`: no table is opened, offered views are not kept, the model is the live one."""
    st = HallsState(tz=TZ)

    def live() -> dict[str, Any]:
        return overview_model(st, {}, (), at("2026-11-26T09:00"), rules=RULES)

    async with opened(StoreSettings()) as table:
        assert table is None
    share = OverviewShare(None, None, StoreSettings())  # type: ignore[arg-type]
    share.offer(views(st).values())
    assert share.pending == {} and share.model(live) is live


@dataclass
class Held:
    """What the share reads of a daemon (`overview.Source`), here plain real objects."""

    state: HallsState
    settings: Settings = field(default_factory=Settings)
    alert_settings: AlertSettings = field(default_factory=AlertSettings)
    calendar: WorkCalendar = field(default_factory=WorkCalendar)
    alerts: None = None
    complaints: None = None
    callbacks: None = None
    clock: Callable[[], float] = lambda: NOW

    def advice(self, hall: str, *, fresh: bool = False) -> None:
        return None


async def test_a_row_whose_write_failed_is_written_on_a_later_cycle(pg_url: str) -> None:
    """A changed row whose write failed (the database away) is written by the next cycle that
    can, though the tick offers it no more and the keep-alive is not due."""
    st = HallsState(tz=TZ)
    people(st, "h1", 10)
    settings = StoreSettings(url=pg_url, instance="a", overview_keepalive_s=3600)
    async with opened(settings) as table:
        assert table is not None
        share = OverviewShare(Held(st), table, settings)
        share.offer(views(st).values())
        await share.cycle()
        st.apply(door_ev("d1", 30, 0, T0 + 120, hall="h1"))
        share.offer(views(st).values())
        await table.__aexit__(None, None, None)  # the database away for one cycle
        with pytest.raises(RuntimeError):
            await share.cycle()
        await table.__aenter__()
        await share.cycle()
        _, rows = await table.since(0.0)
        assert [(s.hall, s.row["headcount"]) for s in rows] == [("h1", 30)]


async def test_a_row_nobody_wrote_for_a_day_is_deleted_and_forgotten(pg_url: str) -> None:
    """A retired shard's row (last written 25 h ago) and a live shard's: this instance's next
    keep-alive deletes the old one from the table (not a cycle between keep-alives) and its
    overview forgets it; the live shard's row and this instance's own stay."""
    st = HallsState(tz=TZ)
    people(st, "h1", 10)
    settings = StoreSettings(url=pg_url, instance="a", overview_keepalive_s=3600)

    async def halls(table: OverviewTable) -> list[str]:
        async with table.db.execute("SELECT hall FROM hall_overview ORDER BY hall") as cur:
            return [r[0] for r in await cur.fetchall()]

    async with opened(settings) as table:
        assert table is not None
        share = OverviewShare(Held(st), table, settings)
        await table.upsert("gone", [("h8", json.dumps(remote("h8", 5).row))])
        await table.upsert("b", [("h9", json.dumps(remote("h9", 5).row))])
        share.offer(views(st).values())
        await share.cycle()  # a keep-alive: h8 is fresh yet
        assert await halls(table) == ["h1", "h8", "h9"] and {"h8", "h9"} <= set(share.others)
        # A day passes in which h8's shard writes nothing (the table's clock and this memory's).
        await table.write(
            "UPDATE hall_overview SET written_at = written_at - ? WHERE hall = 'h8'",
            (FORGET_S + 3600,),
        )
        h8 = share.others["h8"]
        share.others["h8"] = replace(h8, written_at=h8.written_at - FORGET_S - 3600)
        await share.cycle()  # between keep-alives: the table is left as it is
        assert await halls(table) == ["h1", "h8", "h9"]
        assert "h8" not in share.others, "a row a day old is forgotten at the read"
        share._keepalive_at = 0.0  # the keep-alive is due
        await share.cycle()
        assert await halls(table) == ["h1", "h9"]
        other = OverviewShare(Held(HallsState(tz=TZ)), table, settings)  # another instance
        await other.cycle()
        assert set(other.others) == {"h1", "h9"}
