"""A report's history from the event database: the period's events and the records beside them
(acknowledgements, complaint workflow, call-back register), from a `Source`.

SQLite (`connect`): a read-only connection to the daemon's file; the daemon may be writing, WAL
lets a reader in. PostgreSQL (`store.url`, reports/pgsource.py): every instance's event log in
the database, deduplicated by (hall, id), and the centre's shared registers. The records: the
alert service's acknowledgements (`alert_acks`, `alert_ack_details`, `alert_state`), the
complaint workflow (`complaints`, `complaint_history`) and the outage call-back register
(`callbacks`). A table that is not there gives None, and the report shows "—" rather than a
guess.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from hallwatch.alerts.rules import RuleEngine
from hallwatch.daemon.config.alerts import RuleSettings
from hallwatch.daemon.config.sections import StoreSettings
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.reports.figures import Report, report
from hallwatch.daemon.reports.hallday import Stored
from hallwatch.daemon.reports.inputs import (
    Ack,
    CallbackRecord,
    ComplaintRecord,
    Period,
    ReportSettings,
    Workflow,
    event_filter,
)

log = logging.getLogger("hallwatch.report")


class Source(Protocol):
    """Where a report reads: the events of a period, the centre's tables, the engines' states.
    `query` takes SQL with `?` placeholders in the subset both engines read; `errors` are what
    a failed query raises."""

    errors: tuple[type[Exception], ...]

    def has_table(self, name: str) -> bool: ...

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]: ...

    def events(self, lo: float, hi: float, hall: str | None = None) -> list[Stored]: ...

    def rule_states(self) -> list[bytes]: ...

    def close(self) -> None: ...


class SqliteSource:
    """A report's reads on the daemon's SQLite file."""

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def has_table(self, name: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self.conn.execute(sql, args).fetchall()

    def events(self, lo: float, hi: float, hall: str | None = None) -> list[Stored]:
        where, args = event_filter(lo, hi, hall)
        rows = self.query(
            f"SELECT hall, topic, ts, payload FROM events WHERE {where} ORDER BY seq", args
        )
        return [Stored(str(h), str(t), float(ts), bytes(p)) for h, t, ts, p in rows]

    def rule_states(self) -> list[bytes]:
        if not self.has_table("alert_state"):
            return []
        return [
            bytes(r[0]) for r in self.query("SELECT body FROM alert_state WHERE name = 'rules'")
        ]

    def close(self) -> None:
        self.conn.close()


def _source(src: Source | sqlite3.Connection) -> Source:
    return SqliteSource(src) if isinstance(src, sqlite3.Connection) else src


def connect(path: str | Path) -> sqlite3.Connection:
    """A read-only connection; FileNotFoundError when there is no database."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such database")
    conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def open_source(db: str | Path | StoreSettings) -> Source:
    """The source a report reads: PostgreSQL when `db` is store settings with a `url`, else the
    SQLite file (`db`, or the settings' `path`)."""
    if isinstance(db, StoreSettings):
        if db.url:
            # Imported here: a SQLite report never loads psycopg.
            from hallwatch.daemon.reports.pgsource import PgSource

            return PgSource(db.url)
        db = db.path
    return SqliteSource(connect(db))


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    return SqliteSource(conn).has_table(name)


def read_events(
    src: Source | sqlite3.Connection, lo: float, hi: float, hall: str | None = None
) -> list[Stored]:
    """Stored events with event time in [lo, hi), of one hall or all (drills left out), in
    arrival order."""
    return _source(src).events(lo, hi, hall)


def read_acks(src: Source | sqlite3.Connection) -> list[Ack]:
    """Acknowledgements: the alert service's permanent log (`alert_acks`), plus those of
    episodes still firing that are only in its saved state (each instance's, in PostgreSQL)."""
    src = _source(src)
    acks: dict[tuple[str, str, str, float], Ack] = {}
    notes = _ack_notes(src)
    if src.has_table("alert_acks"):
        for alert_id, hall, alert, subject, since, by, at in src.query(
            "SELECT alert_id, hall, alert, subject, started_at, acked_by, acked_at FROM alert_acks"
            " ORDER BY alert_id"
        ):
            note = notes.get(str(alert_id))
            by = f"{by}；备注：{note}" if note else by
            ack = Ack(str(hall), str(alert), str(subject), float(since), float(at), str(by))
            acks[(ack.hall, ack.alert, ack.subject, ack.since)] = ack
    for body in src.rule_states():
        engine = RuleEngine(RuleSettings())
        engine.restore(body)
        for e in engine.episodes.values():
            if e.acked_at is not None:
                ack = Ack(e.hall, e.alert, e.subject, e.since, e.acked_at, e.acked_by or "")
                acks.setdefault((ack.hall, ack.alert, ack.subject, ack.since), ack)
    return list(acks.values())


def _ack_notes(src: Source) -> dict[str, str]:
    """The notes left on the phone page with an acknowledgement (alerts.acklink), by alert id;
    who and how many emergency windows are in `acked_by` already."""
    if not src.has_table("alert_ack_details"):
        return {}
    rows = src.query("SELECT alert_id, note FROM alert_ack_details WHERE note != ''")
    return {str(a): str(n) for a, n in rows}


def complaint_rows(src: Source | sqlite3.Connection) -> list[ComplaintRecord] | None:
    """How each complaint was handled, from the complaint workflow's tables; None without them.

    Answered: the complaint's `answered_at`; escalated: an `escalate` step in its history;
    followed up: the first step that left it `followed_up`; responsible: its `assignee`.
    """
    src = _source(src)
    if not (src.has_table("complaints") and src.has_table("complaint_history")):
        return None
    unreadable: tuple[type[Exception], ...] = (*src.errors, ValueError, TypeError, AttributeError)
    try:
        steps: dict[tuple[str, str], list[tuple[float, str, str]]] = {}
        for hall, cid, at, action, state in src.query(
            "SELECT hall, complaint_id, at, action, state FROM complaint_history ORDER BY seq"
        ):
            steps.setdefault((hall, cid), []).append((float(at), str(action), str(state)))
        out = []
        for hall, cid, body in src.query(
            "SELECT hall, complaint_id, body FROM complaints ORDER BY hall, complaint_id"
        ):
            c = json.loads(body)
            hist = steps.get((hall, cid), [])
            follow = [at for at, _, state in hist if state == "followed_up"]
            out.append(
                ComplaintRecord(
                    hall=str(hall),
                    complaint_id=str(cid),
                    answered_at=c.get("answered_at"),
                    escalated=any(action == "escalate" for _, action, _ in hist),
                    followup_at=min(follow) if follow else None,
                    responsible=c.get("assignee") or None,
                )
            )
        return out
    except unreadable as err:
        log.warning("complaint tables unreadable, left out of the report: %s", err)
        return None


def callback_rows(src: Source | sqlite3.Connection) -> list[CallbackRecord] | None:
    """The outage call-back register; None without its table."""
    src = _source(src)
    if not src.has_table("callbacks"):
        return None
    unreadable: tuple[type[Exception], ...] = (*src.errors, ValueError, TypeError)
    try:
        return [
            CallbackRecord(
                str(hall),
                float(at),
                None if notified is None else float(notified),
                tuple(s for s in str(systems).split(",") if s),
            )
            for hall, at, notified, systems in src.query(
                "SELECT hall, registered_at, notified_at, systems FROM callbacks ORDER BY id"
            )
        ]
    except unreadable as err:
        log.warning("call-back register unreadable, left out of the report: %s", err)
        return None


def gather(
    db: str | Path | StoreSettings,
    period: Period,
    settings: Settings,
    *,
    hall: str | None = None,
    now: float | None = None,
    rs: ReportSettings | None = None,
) -> Report:
    """Read the period's history from the database (`db`: a SQLite file, or the store settings:
    PostgreSQL when they name a `url`) and build the report (CPU-bound: seconds per hall-day)."""
    rs = rs or ReportSettings.from_settings(settings)
    lo, hi = period.bounds(rs.tz)
    src = open_source(db)
    try:
        events = src.events(lo, hi, hall)
        workflow = Workflow(complaint_rows(src), callback_rows(src), read_acks(src))
    finally:
        src.close()
    return report(
        events,
        period,
        rs,
        workflow=workflow,
        hall_filter=hall,
        generated_at=time.time() if now is None else now,
    )
