"""The centre overview across shards: with `store.url` set, every instance publishes its halls'
overview rows to the shared table `hallwatch.hall_overview`, and its overview shows the other
instances' halls from that table beside its own (from memory), ranked together.

Writing: the alert tick hands the views it built (`offer`: halls that changed, alert, or were
not seen for 30 s) to this module's own task, which turns them into rows (`overview.hall_rows`,
yielding to the event loop between halls) and upserts, in one transaction a cycle, the rows that
changed, and every row of its halls each `store.overview_keepalive_s` (the keep-alive). Neither
the tick nor ingest waits on PostgreSQL: a slow or absent database delays only this task, and
what it could not write is written on a later cycle. A row is keyed by hall: the two instances
of a pair write the same halls, the last writer wins (both compute the same state).

Reading: each cycle reads the rows written since the last read (`written_at` is the database's
clock, as the outbox's leases, so the hosts' clocks need not agree). The overview takes a hall
from memory when this instance holds it, else the table's row; a row older than 3 keep-alives
(its writer has gone quiet) is marked stale: "数据已过时（实例 X 最后更新 10:42）". A row
nobody has written for FORGET_S (a day: its shard was removed, or its halls given to another
with another name) is deleted by the next keep-alive of any instance, and forgotten by every
instance's next read, so a retired shard's halls do not stay on the overview for ever.
On SQLite (one instance) nothing of this runs and the overview is what it was.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from hallwatch.alerts.view import HallView
from hallwatch.daemon.base.ratelog import RateLimitedLog
from hallwatch.daemon.config.sections import StoreSettings
from hallwatch.daemon.store.files import OnSchema
from hallwatch.daemon.web.overview import Source, hall_rows
from hallwatch.daemon.web.overview_model import Model, rank_key, totals

log = logging.getLogger("hallwatch.overview")

CYCLE_S = 1.0  # how often the task writes what the ticks offered and reads the others' rows
STALE_KEEPALIVES = 3  # a row older than this many keep-alives is stale
YIELD_S = 0.01  # building rows, the task hands the event loop back this often
MARGIN_S = 3.0  # a read looks back this far past the last one (transactions still open then)
FORGET_S = 24 * 3600.0  # a row not written for this long is deleted (its shard is gone)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hall_overview (
    hall TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    written_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS hall_overview_written ON hall_overview (written_at);
"""
_NOW = "EXTRACT(EPOCH FROM clock_timestamp())::float8"  # the database's clock (PostgreSQL only)


@dataclass(frozen=True, slots=True)
class Shared:
    """One hall's row as an instance wrote it; `written_at` on the database's clock."""

    hall: str
    instance: str
    written_at: float
    row: Model


class OverviewTable(OnSchema):
    """The shared table of hall rows (PostgreSQL only: `OverviewTable.open(settings.store)`)."""

    SCHEMA = _SCHEMA
    NAME = "overview table"
    SHARED = ("hall_overview",)

    async def upsert(self, instance: str, rows: Iterable[tuple[str, str]]) -> None:
        """(hall, row as JSON) each, in one transaction, stamped with the database's clock."""
        async with self.transaction() as tx:
            await tx.executemany(
                "INSERT INTO hall_overview (hall, instance, written_at, body)"
                f" VALUES (?, ?, {_NOW}, ?) ON CONFLICT (hall) DO UPDATE SET"
                " instance = excluded.instance, written_at = excluded.written_at,"
                " body = excluded.body",
                [(hall, instance, body) for hall, body in rows],
            )

    async def prune(self, older_s: float) -> int:
        """Delete the rows not written for `older_s` (the database's clock); returns how many."""
        return await self.write(
            f"DELETE FROM hall_overview WHERE written_at < {_NOW} - ?", (older_s,)
        )

    async def since(self, at: float) -> tuple[float, list[Shared]]:
        """The database's clock now, and the rows written at or after `at`."""
        sql = f"SELECT hall, instance, written_at, body, {_NOW} FROM hall_overview"
        async with self.db.execute(sql + " WHERE written_at >= ?", (at,)) as cur:
            got = await cur.fetchall()
        if not got:
            async with self.db.execute(f"SELECT {_NOW}") as cur:
                return float((await cur.fetchone())[0]), []
        rows = [Shared(h, i, float(w), row) for h, i, w, b, _ in got if (row := _usable(b))]
        return float(got[0][4]), rows


#: What the ranking and the totals read of a row: one without them (another version's) is left out.
_NEEDED = ("hall", "pressure", "alerts_unacked", "waiting", "level", "headcount", "uncovered")
_NEEDED_TOO = ("alerts", "outage", "callbacks", "complaints")


def _usable(body: str) -> Model | None:
    try:
        row = json.loads(body)
    except ValueError:
        return None
    if not isinstance(row, dict) or any(k not in row for k in _NEEDED + _NEEDED_TOO):
        return None
    return row


def _fingerprint(row: Model) -> str:
    """The row as written, less what moves every second (the endured wait's seconds: its
    minutes, and the pressure from it, still count)."""
    endured = row.get("longest_endured")
    if endured:
        row = {**row, "longest_endured": {k: v for k, v in endured.items() if k != "wait_s"}}
    return json.dumps(row, ensure_ascii=False, sort_keys=True)


def stale_text(instance: str, written_at: float, zone: ZoneInfo) -> str:
    at = datetime.fromtimestamp(written_at, zone).strftime("%H:%M")
    return f"数据已过时（实例 {instance} 最后更新 {at}）"


def with_shards(
    model: Model,
    own: Collection[str],
    shared: Iterable[Shared],
    *,
    instance: str,
    db_now: float,
    stale_after_s: float,
    tz: str,
) -> Model:
    """`model` (this instance's overview from memory) with the other halls' rows of `shared`,
    ranked together; `own`: the halls this instance holds (always its own rows). A shared row
    older than `stale_after_s` at `db_now` (the database's clock) is marked stale."""
    zone = ZoneInfo(tz)
    rows: dict[str, Model] = {}
    for r in model["halls"]:
        rows[r["hall"]] = {**r, "instance": instance, "stale": False, "stale_text": None}
    for s in shared:
        if s.hall in own:
            continue
        stale = db_now - s.written_at > stale_after_s
        rows[s.hall] = {
            **s.row,
            "instance": s.instance,
            "written_at": s.written_at,
            "stale": stale,
            "stale_text": stale_text(s.instance, s.written_at, zone) if stale else None,
        }
    ranked = sorted(rows.values(), key=rank_key)
    for i, row in enumerate(ranked, 1):
        row["rank"] = i
    return {
        **model,
        "totals": {**totals(ranked), "stale": sum(1 for r in ranked if r["stale"])},
        "halls": ranked,
    }


class OverviewShare:
    """Publishes this instance's hall rows and keeps the others' (see the module's doc). With
    no table (SQLite) it does nothing and `model` gives the overview unchanged."""

    def __init__(
        self,
        src: Source,
        table: OverviewTable | None,
        settings: StoreSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.src = src
        self.table = table
        self.instance = settings.instance_name()
        self.keepalive_s = settings.overview_keepalive_s
        self.monotonic = monotonic
        self.pending: dict[str, HallView] = {}
        self.rows: dict[str, tuple[str, str]] = {}  # hall -> (row as JSON, fingerprint), last
        self.written: dict[str, str] = {}  # hall -> the fingerprint of the row last written
        self.dirty: set[str] = set()  # halls whose row changed and is not written yet
        self.others: dict[str, Shared] = {}
        self.skew = 0.0  # the database's clock minus the monotonic clock, at the last read
        self._read_from = 0.0
        self._keepalive_at = 0.0
        self._errors = RateLimitedLog(log, every=60.0)

    def offer(self, views: Iterable[HallView]) -> None:
        """The tick's views: their halls' rows are built and written on the next cycle."""
        if self.table is not None:
            self.pending.update((v.hall, v) for v in views)

    async def run(self) -> None:
        table = self.table
        if table is None:
            await asyncio.Event().wait()  # SQLite: nothing to share; cancelled with the others
            return
        while True:
            await asyncio.sleep(CYCLE_S)
            try:
                await self.cycle()
            except table.file.errors as err:  # the database away: try again next cycle
                self._errors.log(logging.WARNING, "db", self.monotonic(), "overview share: %s", err)
            except Exception as err:  # never the daemon's end: the overview is not its duty
                self._errors.log(
                    logging.ERROR, "bug", self.monotonic(), "overview share failed", exc_info=err
                )

    async def cycle(self) -> None:
        """Rows for the views offered; write those changed (all when the keep-alive is due) in
        one transaction; read the rows written since the last read."""
        assert self.table is not None
        views, self.pending = list(self.pending.values()), {}
        self.dirty |= await self._build(views)  # what a failed write left stays dirty
        now = self.monotonic()
        keepalive = now >= self._keepalive_at
        todo = set(self.rows) if keepalive else self.dirty
        if todo:
            rows = {h: self.rows[h] for h in sorted(todo)}
            await self.table.upsert(self.instance, ((h, body) for h, (body, _) in rows.items()))
            self.written.update((h, fp) for h, (_, fp) in rows.items())
        self.dirty = set()
        if keepalive:
            self._keepalive_at = now + self.keepalive_s
            if gone := await self.table.prune(FORGET_S):
                log.info(
                    "overview share: %d halls not written for %.0f h forgotten",
                    gone,
                    FORGET_S / 3600,
                )
        db_now, read = await self.table.since(self._read_from)
        self.skew = db_now - self.monotonic()
        self._read_from = db_now - MARGIN_S
        self.others.update((s.hall, s) for s in read)
        for hall in [h for h, s in self.others.items() if db_now - s.written_at > FORGET_S]:
            del self.others[hall]

    async def _build(self, views: list[HallView]) -> set[str]:
        """The rows of `views` (kept in `rows`); returns the halls whose row changed since it
        was last written."""
        changed: set[str] = set()
        started = time.perf_counter()
        for hall, row in hall_rows(self.src, views):
            fp = _fingerprint(row)
            self.rows[hall] = (json.dumps(row, ensure_ascii=False), fp)
            if self.written.get(hall) != fp:
                changed.add(hall)
            if time.perf_counter() - started > YIELD_S:
                await asyncio.sleep(0)
                started = time.perf_counter()
        return changed

    def model(self, live: Callable[[], Model]) -> Callable[[], Model]:
        """The overview: `live` (this instance's halls from memory) and the others' rows."""
        if self.table is None:
            return live

        def merged() -> Model:
            return with_shards(
                live(),
                self.src.state.halls,
                self.others.values(),
                instance=self.instance,
                db_now=self.monotonic() + self.skew,
                stale_after_s=STALE_KEEPALIVES * self.keepalive_s,
                tz=self.src.state.tz,
            )

        return merged


@asynccontextmanager
async def opened(settings: StoreSettings) -> AsyncIterator[OverviewTable | None]:
    """The shared table, open, with `store.url` set; None on SQLite."""
    if not settings.url:
        yield None
        return
    async with OverviewTable.open(settings) as table:
        yield table
