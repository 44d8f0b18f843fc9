"""Two instances, one voice: the outbox in PostgreSQL, shared by every instance of a centre.

Both instances compute the same transitions and enqueue the same notifications under the same
idempotency key; the first insert wins, the second changes nothing (`enqueue` takes an advisory
lock first, so two enqueues of overlapping keys in different orders cannot deadlock).

A sender claims what is due with `SELECT ... FOR UPDATE SKIP LOCKED`, stamping the rows with its
name and a lease (`claimed_by`, `lease_until`, on the database's clock, so the instances' clocks
need not agree). While it lives it renews the lease of every pending row it holds, every third
of `store.lease_s`; when it dies the lease runs out and the survivor's next claim takes the rows
over (logged, counted). A sender that died between a channel's acceptance and `mark_sent` is
sent again by the survivor: at least once, as on restart; receivers with an idempotency key
dedupe by it, WeCom shows it twice. That window is kept as short as it can be: the sender notes
`sending_at` before each send and records each answer at once, in one autocommitted statement
on a connection of its own (alerts/dispatcher.py records before the lane's next send); the
survivor logs and counts (`hallwatch_outbox_resent_unknown`) each row taken over mid-send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any, Self

from hallwatch.alerts.outbox import (
    COLUMNS,
    OUTBOX_SCHEMA,
    SHARED_TABLES,
    Notification,
    Outbox,
    notification,
)
from hallwatch.daemon.config.sections import StoreSettings
from hallwatch.daemon.store.backend import Writes
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("hallwatch.alerts")

_CLAIMS = """
ALTER TABLE alert_outbox ADD COLUMN IF NOT EXISTS claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE alert_outbox ADD COLUMN IF NOT EXISTS lease_until REAL NOT NULL DEFAULT 0;
ALTER TABLE alert_outbox ADD COLUMN IF NOT EXISTS sending_at REAL NOT NULL DEFAULT 0;
"""
# The episodes the instances began (one voice): an instance about to fire an episode that a peer
# began within ADOPT_S and has not ended takes the peer's start, and so its alert id and keys; so
# does one that a peer reopened with a relapse within ADOPT_S (`reopened_at`, the instances'
# clock): an instance down through the episode's last clear sees that crossing as a new peak.
_EPISODES = """
CREATE TABLE IF NOT EXISTS alert_episodes (
    hall TEXT NOT NULL,
    alert TEXT NOT NULL,
    subject TEXT NOT NULL,
    since REAL NOT NULL,
    instance TEXT NOT NULL,
    ended REAL,
    PRIMARY KEY (hall, alert, subject, since)
);
ALTER TABLE alert_episodes ADD COLUMN IF NOT EXISTS began_ev REAL;
ALTER TABLE alert_episodes ADD COLUMN IF NOT EXISTS ended_ev REAL;
ALTER TABLE alert_episodes ADD COLUMN IF NOT EXISTS ended_at REAL;
ALTER TABLE alert_episodes ADD COLUMN IF NOT EXISTS relapses_at REAL[];
ALTER TABLE alert_episodes ALTER COLUMN relapses_at SET DEFAULT '{}';
ALTER TABLE alert_episodes ADD COLUMN IF NOT EXISTS ends_at REAL[];
ALTER TABLE alert_episodes ALTER COLUMN ends_at SET DEFAULT '{}';
ALTER TABLE alert_episodes ADD COLUMN IF NOT EXISTS reopened_at REAL;
"""
# The relapses of an episode are counted here, not by each engine (one voice through a relapse):
# `relapses_at` holds when each relapse came and `ends_at` when each resolution, in event time
# (the view's `last_event_at`), else on the instances' clock. A relapse is number k when k
# resolutions came before it, a resolution 1 + the relapses before it: so an instance that was
# down through a relapse, or is behind, numbers what it sees as the instance that saw it first.
# The lists are NULL in a row begun before they existed (that episode keeps the engines' counts).
ADOPT_S = 300.0
# An instance behind on its backlog fires a peak the other has already fired and ended: it
# takes that episode (quiet) when its view's event time lies within the episode's, from this
# much before the other fired it (the other fired `for_s` after the crossing, the late one a
# tick or so earlier or later in event time) until it ended.
BEHIND_SLACK_S = 30.0
_NOW = "extract(epoch from clock_timestamp())"
_ENQUEUE_LOCK = 0x6F7574  # pg_advisory_xact_lock key of enqueues
_O_COLUMNS = ", ".join(f"o.{c}" for c in COLUMNS.split(", "))
_CLAIM = f"""
WITH c AS (
    SELECT seq, claimed_by AS was, sending_at FROM alert_outbox
    WHERE state = 'pending' AND due <= ? AND (claimed_by = ? OR lease_until < {_NOW})
    ORDER BY due, seq LIMIT ? FOR UPDATE SKIP LOCKED
)
UPDATE alert_outbox o SET claimed_by = ?, lease_until = {_NOW} + ?, sending_at = 0
FROM c WHERE o.seq = c.seq
RETURNING c.was, c.sending_at, {_O_COLUMNS}
"""
# One statement, committed on its own (autocommit): one round trip from a channel's answer to
# the record, on a connection of the sender's own, never waiting for the pool.
_MARK_SENT = f"""
UPDATE hallwatch.alert_outbox SET state = 'sent', attempts = attempts + 1, done_at = {_NOW},
    last_error = '', sending_at = 0
WHERE seq = %s
"""
_SENDING = f"UPDATE hallwatch.alert_outbox SET sending_at = {_NOW} WHERE seq = %s"


_WHERE_EPISODE = " WHERE hall = ? AND alert = ? AND subject = ? AND since = ?"
_EPISODE_ROW = (
    "SELECT ended, relapses_at, ends_at FROM alert_episodes" + _WHERE_EPISODE + " FOR UPDATE"
)
# A row begun before the lists is ended and reopened with `|| NULL`: its lists stay NULL.
_END = (
    "UPDATE alert_episodes SET ended = extract(epoch from clock_timestamp()), ended_at = ?,"
    " ended_ev = ?, ends_at = ends_at || ?::double precision[]" + _WHERE_EPISODE
)
_REOPEN = (
    "UPDATE alert_episodes SET ended = NULL, ended_at = NULL, ended_ev = NULL, reopened_at = ?,"
    " relapses_at = relapses_at || ?::double precision[]" + _WHERE_EPISODE
)


def _stamp(at: float | None, event_at: float | None) -> float | None:
    """When a relapse or an end came, as `relapses_at` and `ends_at` keep it: in event time,
    else on the instances' clock; None (not told) counts as after everything recorded."""
    return event_at if event_at is not None else at


def _count(stamps: Sequence[float], stamp: float | None) -> int:
    """How many of `stamps` came before (or with) `stamp`."""
    return sum(1 for s in stamps if stamp is None or s <= stamp)


def _last(stamp: float | None, *noted: float) -> float:
    """The stamp to note: `stamp`, or when not told the latest one noted (or the start)."""
    return stamp if stamp is not None else max(noted)


class PgOutbox(Outbox):
    """The outbox in PostgreSQL, claimed with a lease. `async with PgOutbox(url, ...):`."""

    def __init__(self, url: str, *, instance: str, lease_s: float = 15.0) -> None:
        # Imported here: psycopg and its pool are 20 MiB of a daemon's RSS that has no use
        # for them (the SQLite default); daemon/store/events.py does the same.
        from hallwatch.daemon.store.postgres import PgFile

        super().__init__(
            file=PgFile(
                url,
                instance=instance,
                schema=OUTBOX_SCHEMA + _CLAIMS + _EPISODES,
                shared=(*SHARED_TABLES, "alert_episodes"),
                name="outbox",
            )
        )
        self.instance = instance
        self.lease_s = lease_s
        self.taken_over = 0  # notifications claimed from an instance whose lease ran out
        self.held = 0  # pending notifications this instance held at its last renewal
        self.renewal_failures = 0
        self.resent_unknown = 0  # taken over while its sender was sending it: maybe shown twice
        self._renewer: asyncio.Task[None] | None = None
        self._url = url
        self._marker: Any = None  # psycopg.AsyncConnection, autocommit: `sending`, `mark_sent`

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self._renewer = asyncio.create_task(self._renew(), name="outbox-lease")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._drop_marker()
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        await super().__aexit__(*exc)

    async def _serialize(self, tx: Writes) -> None:
        await tx.execute("SELECT pg_advisory_xact_lock(?)", (_ENQUEUE_LOCK,))

    async def due(self, now: float, limit: int = 100) -> list[Notification]:
        """Claim the pending notifications whose time has come and that are unclaimed, ours,
        or held by an instance whose lease ran out; oldest first."""
        me = self.instance
        async with self.transaction() as tx:
            rows = await tx.fetchall(_CLAIM, (now, me, limit, me, self.lease_s))
        notes = sorted((notification(r[2:]) for r in rows), key=lambda n: (n.due, n.seq))
        taken: dict[str, int] = {}
        for r in rows:
            if r[0] and r[0] != me:
                taken[r[0]] = taken.get(r[0], 0) + 1
                if r[1]:
                    self.resent_unknown += 1
                    log.warning(
                        "outbox: %s was being sent by instance %s when it died (no answer"
                        " recorded): it is sent again and may be shown twice",
                        r[3],
                        r[0],
                        extra={"event": r[3]},
                    )
        for was, n in taken.items():
            self.taken_over += n
            log.warning(
                "outbox: took over %d notifications from instance %s (lease ran out)", n, was
            )
        return notes

    async def _marking(self, sql: str, seq: int) -> bool:
        """`sql` on the sender's own autocommit connection (one round trip); False if that
        connection failed (it is opened again next time)."""
        import psycopg

        try:
            if self._marker is None:
                self._marker = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=10
                )
            await self._marker.execute(sql, (seq,))
        except psycopg.Error as err:
            log.warning("outbox: own connection failed, the pool's instead: %s", err)
            await self._drop_marker()
            return False
        return True

    async def _drop_marker(self) -> None:
        marker, self._marker = self._marker, None
        if marker is not None:
            with contextlib.suppress(Exception):
                await marker.close()

    async def sending(self, seq: int) -> None:
        """Note that this instance is about to send `seq`: if it dies before `mark_sent`, the
        survivor knows that one may have reached its receiver (logged, counted)."""
        if not await self._marking(_SENDING, seq):
            await self.write(_SENDING.replace("%s", "?"), (seq,))

    async def mark_sent(self, seq: int, now: float) -> None:
        """Sent, at the database's clock: one autocommitted statement, right after the answer."""
        if not await self._marking(_MARK_SENT, seq):
            await self.write(_MARK_SENT.replace("%s", "?"), (seq,))

    async def mark_retry(self, seq: int, due: float, error: str) -> None:
        await self.write(
            "UPDATE alert_outbox SET attempts = attempts + 1, due = ?, last_error = ?,"
            " sending_at = 0 WHERE seq = ? AND state = 'pending'",
            (due, error[:500], seq),
        )

    async def episode_join(
        self, hall: str, alert: str, subject: str, since: float, event_at: float | None = None
    ) -> tuple[float, bool]:
        """The start of the episode of (hall, alert, subject) this firing belongs to, and
        whether another instance has already ended it. When the view's event time `event_at`
        is known: an ended episode whose event-time span holds it (this instance is behind: it
        sees a peak the other has fired and ended). Else an open one that an instance (this one
        included) began, or reopened with a relapse, within ADOPT_S of `since`, nearest first,
        unless it began later in event time than this view (a later peak than the one this
        instance sees). Else an ended one that was open at `since` (this instance saw the
        crossing begin during it). Else `since`, now recorded. Under the enqueue lock: of two
        firing at once, the first one's start wins."""
        key = (hall, alert, subject)
        async with self.transaction() as tx:
            await self._serialize(tx)
            if event_at is not None:
                rows = await tx.fetchall(
                    "SELECT since FROM alert_episodes WHERE hall = ? AND alert = ?"
                    " AND subject = ? AND ended IS NOT NULL AND ended_ev > ? AND began_ev <= ?"
                    " ORDER BY ended_ev LIMIT 1",
                    (*key, event_at, event_at + BEHIND_SLACK_S),
                )
                if rows:
                    return float(rows[0][0]), True
            later = float("inf") if event_at is None else event_at + BEHIND_SLACK_S
            lo, hi = since - ADOPT_S, since + ADOPT_S
            rows = await tx.fetchall(
                "SELECT since FROM alert_episodes WHERE hall = ? AND alert = ? AND subject = ?"
                " AND ended IS NULL AND (since BETWEEN ? AND ? OR reopened_at BETWEEN ? AND ?)"
                " AND (began_ev IS NULL OR began_ev <= ?)"
                " ORDER BY abs(coalesce(reopened_at, since) - ?) LIMIT 1",
                (*key, lo, hi, lo, hi, later, since),
            )
            if rows:
                return float(rows[0][0]), False
            # This instance began to see the crossing while another's episode of it was open
            # (it was killed while the peak was pending, and restarted after the other ended
            # it): the same peak.
            rows = await tx.fetchall(
                "SELECT since FROM alert_episodes WHERE hall = ? AND alert = ? AND subject = ?"
                " AND ended_at IS NOT NULL AND since <= ? AND ended_at > ?"
                " ORDER BY since DESC LIMIT 1",
                (*key, since + BEHIND_SLACK_S, since),
            )
            if rows:
                return float(rows[0][0]), True
            await tx.execute(
                "INSERT INTO alert_episodes (hall, alert, subject, since, instance, began_ev)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (*key, since, self.instance, event_at),
            )
        return since, False

    async def episode_ended(
        self,
        hall: str,
        alert: str,
        subject: str,
        since: float,
        *,
        at: float | None = None,
        event_at: float | None = None,
        own: int = 1,
    ) -> int:
        """Ended: `ended` on the database's clock, `ended_at` on the instances' (as `since`),
        `ended_ev` in event time; the first instance to end it sets them and notes the end in
        `ends_at`. The resolution's ordinal: 1 + the relapses recorded before it (`own`, the
        engine's count, for a row that has no lists)."""
        ep = (hall, alert, subject, since)
        stamp = _stamp(at, event_at)
        async with self.transaction() as tx:
            row = await tx.fetchone(_EPISODE_ROW, ep)
            if row is None or row[1] is None or row[2] is None:  # begun before the lists
                await tx.execute(_END + " AND ended IS NULL", (at, event_at, None, *ep))
                return own
            ended, relapses = row[0], row[1]
            before = _count(relapses, stamp)
            if ended is None and before == len(relapses):  # the open one: this ends it
                await tx.execute(_END, (at, event_at, [_last(stamp, since, *relapses)], *ep))
        return before + 1

    async def episode_open(self, hall: str, alert: str, subject: str, since: float) -> bool:
        """False once an instance resolved the episode begun at `since` (and it did not relapse);
        an episode the table does not hold (pruned, or older than it) counts as open."""
        async with self.db.execute(
            "SELECT ended IS NULL FROM alert_episodes"
            " WHERE hall = ? AND alert = ? AND subject = ? AND since = ?",
            (hall, alert, subject, since),
        ) as cur:
            row = await cur.fetchone()
        return row is None or bool(row[0])

    async def episode_reopened(
        self,
        hall: str,
        alert: str,
        subject: str,
        since: float,
        *,
        at: float | None = None,
        event_at: float | None = None,
        own: int = 1,
    ) -> int:
        """The relapse's number: the resolutions recorded before it. One that comes after every
        recorded end is new: the episode is open again and the relapse noted in `relapses_at`;
        else another instance has counted it already (this one was down, or is behind)."""
        ep = (hall, alert, subject, since)
        stamp = _stamp(at, event_at)
        async with self.transaction() as tx:
            row = await tx.fetchone(_EPISODE_ROW, ep)
            if row is None or row[1] is None or row[2] is None:  # begun before the lists
                await tx.execute(_REOPEN, (at, None, *ep))
                return own
            ended, relapses, ends = row
            after = _count(ends, stamp)
            if ended is not None and after == len(ends):  # after every end: a new relapse
                await tx.execute(_REOPEN, (at, [_last(stamp, since, *ends)], *ep))
                return len(relapses) + 1
        return max(1, min(after, len(relapses)))

    async def peer_acks(self, alert_ids: Sequence[str]) -> dict[str, tuple[str, float]]:
        """The acknowledgements of `alert_ids` in the shared log, whichever instance took them."""
        async with self.db.execute(
            "SELECT alert_id, acked_by, acked_at FROM alert_acks WHERE alert_id = ANY(?)",
            (list(alert_ids),),
        ) as cur:
            rows = await cur.fetchall()
        return {r[0]: (r[1], float(r[2])) for r in rows}

    async def prune(self, before: float) -> int:
        n = await super().prune(before)
        await self.write("DELETE FROM alert_episodes WHERE since < ?", (before,))
        return n

    async def next_due(self) -> float | None:
        """The earliest due time of what this instance may claim (not what another holds)."""
        async with self.db.execute(
            "SELECT MIN(due) FROM alert_outbox WHERE state = 'pending'"
            f" AND (claimed_by = ? OR lease_until < {_NOW})",
            (self.instance,),
        ) as cur:
            row = await cur.fetchone()
        return None if row is None or row[0] is None else float(row[0])

    async def renew(self) -> int:
        """Extend the lease of every pending notification this instance holds."""
        self.held = await self.write(
            f"UPDATE alert_outbox SET lease_until = {_NOW} + ?"
            " WHERE claimed_by = ? AND state = 'pending'",
            (self.lease_s, self.instance),
        )
        return self.held

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await self.renew()
            except self.file.errors as err:
                self.renewal_failures += 1
                log.warning("outbox: lease not renewed: %s", err)


def open_outbox(settings: StoreSettings) -> Outbox:
    """The outbox `settings` name: shared in PostgreSQL when `url` is set, else the SQLite file."""
    if settings.url:
        return PgOutbox(settings.url, instance=settings.instance_name(), lease_s=settings.lease_s)
    return Outbox(settings.path, synchronous=settings.synchronous)


class InstanceCollector(Collector):
    """`hallwatch_instance_info{instance}` = 1, so dashboards can tell the instances of a pair
    apart and count each once; with the shared outbox, its claims by `instance`."""

    def __init__(self, instance: str, outbox: Outbox) -> None:
        self._instance = instance
        self._outbox = outbox

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        me = [self._instance]
        info = GaugeMetricFamily(
            "hallwatch_instance_info", "This daemon's name (store.instance).", labels=["instance"]
        )
        info.add_metric(me, 1)
        yield info
        ob = self._outbox
        if not isinstance(ob, PgOutbox):
            return
        held = GaugeMetricFamily(
            "hallwatch_outbox_claimed",
            "Pending notifications this instance holds a lease on (shared PostgreSQL outbox).",
            labels=["instance"],
        )
        held.add_metric(me, ob.held)
        yield held
        for name, text, value in (
            (
                "hallwatch_outbox_taken_over",
                "Notifications claimed from an instance whose lease ran out (it died).",
                ob.taken_over,
            ),
            (
                "hallwatch_outbox_resent_unknown",
                "Notifications taken over while their dead sender was sending them (no answer"
                " recorded): sent again, a receiver without idempotency key may show them twice.",
                ob.resent_unknown,
            ),
            (
                "hallwatch_outbox_lease_renewal_failures",
                "Lease renewals of the outbox claims that failed (PostgreSQL unreachable).",
                ob.renewal_failures,
            ),
        ):
            family = CounterMetricFamily(name, text, labels=["instance"])
            family.add_metric(me, value)
            yield family
