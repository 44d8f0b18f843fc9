"""A report's history from the event database: a read-only connection, the period's events and
the records beside them (acknowledgements, complaint workflow, call-back register).

The daemon may be writing; WAL lets a reader in. The records: the alert service's
acknowledgements (`alert_acks`, `alert_state`), the complaint workflow (`complaints`,
`complaint_history`) and the outage call-back register (`callbacks`). A table that is not there
gives None, and the report shows "—" rather than a guess.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from hallwatch.alerts.drill import PREFIX as DRILL_PREFIX
from hallwatch.alerts.rules import RuleEngine
from hallwatch.daemon.config.alerts import RuleSettings
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
)

log = logging.getLogger("hallwatch.report")


def connect(path: str | Path) -> sqlite3.Connection:
    """A read-only connection; FileNotFoundError when there is no database."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such database")
    conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def read_events(
    conn: sqlite3.Connection, lo: float, hi: float, hall: str | None = None
) -> list[Stored]:
    """Stored events with event time in [lo, hi), of one hall or all, in arrival order. "All"
    leaves drill halls out (alerts.drill): a drill is not a day of the centre; name the drill
    hall to report it."""
    sql = "SELECT hall, topic, ts, payload FROM events WHERE ts >= ? AND ts < ?"
    args: list[Any] = [lo, hi]
    if hall is not None:
        sql += " AND hall = ?"
        args.append(hall)
    else:
        sql += " AND hall NOT LIKE ?"
        args.append(DRILL_PREFIX + "%")
    rows = conn.execute(sql + " ORDER BY seq", args).fetchall()
    return [Stored(str(h), str(t), float(ts), bytes(p)) for h, t, ts, p in rows]


def read_acks(conn: sqlite3.Connection) -> list[Ack]:
    """Acknowledgements: the alert service's permanent log (`alert_acks`), plus those of
    episodes still firing that are only in its saved state."""
    acks: dict[tuple[str, str, str, float], Ack] = {}
    notes = _ack_notes(conn)
    if has_table(conn, "alert_acks"):
        for alert_id, hall, alert, subject, since, by, at in conn.execute(
            "SELECT alert_id, hall, alert, subject, started_at, acked_by, acked_at FROM alert_acks"
        ):
            note = notes.get(str(alert_id))
            by = f"{by}；备注：{note}" if note else by
            ack = Ack(str(hall), str(alert), str(subject), float(since), float(at), str(by))
            acks[(ack.hall, ack.alert, ack.subject, ack.since)] = ack
    if has_table(conn, "alert_state"):
        row = conn.execute("SELECT body FROM alert_state WHERE name = 'rules'").fetchone()
        if row is not None:
            engine = RuleEngine(RuleSettings())
            engine.restore(bytes(row[0]))
            for e in engine.episodes.values():
                if e.acked_at is not None:
                    ack = Ack(e.hall, e.alert, e.subject, e.since, e.acked_at, e.acked_by or "")
                    acks.setdefault((ack.hall, ack.alert, ack.subject, ack.since), ack)
    return list(acks.values())


def _ack_notes(conn: sqlite3.Connection) -> dict[str, str]:
    """The notes left on the phone page with an acknowledgement (alerts.acklink), by alert id;
    who and how many emergency windows are in `acked_by` already."""
    if not has_table(conn, "alert_ack_details"):
        return {}
    rows = conn.execute("SELECT alert_id, note FROM alert_ack_details WHERE note != ''")
    return {str(a): str(n) for a, n in rows}


def complaint_rows(conn: sqlite3.Connection) -> list[ComplaintRecord] | None:
    """How each complaint was handled, from the complaint workflow's tables; None without them.

    Answered: the complaint's `answered_at`; escalated: an `escalate` step in its history;
    followed up: the first step that left it `followed_up`; responsible: its `assignee`.
    """
    if not (has_table(conn, "complaints") and has_table(conn, "complaint_history")):
        return None
    try:
        steps: dict[tuple[str, str], list[tuple[float, str, str]]] = {}
        for hall, cid, at, action, state in conn.execute(
            "SELECT hall, complaint_id, at, action, state FROM complaint_history ORDER BY seq"
        ):
            steps.setdefault((hall, cid), []).append((float(at), str(action), str(state)))
        out = []
        for hall, cid, body in conn.execute("SELECT hall, complaint_id, body FROM complaints"):
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
    except (sqlite3.Error, ValueError, TypeError, AttributeError) as err:
        log.warning("complaint tables unreadable, left out of the report: %s", err)
        return None


def callback_rows(conn: sqlite3.Connection) -> list[CallbackRecord] | None:
    """The outage call-back register; None without its table."""
    if not has_table(conn, "callbacks"):
        return None
    try:
        return [
            CallbackRecord(
                str(hall),
                float(at),
                None if notified is None else float(notified),
                tuple(s for s in str(systems).split(",") if s),
            )
            for hall, at, notified, systems in conn.execute(
                "SELECT hall, registered_at, notified_at, systems FROM callbacks"
            )
        ]
    except (sqlite3.Error, ValueError, TypeError) as err:
        log.warning("call-back register unreadable, left out of the report: %s", err)
        return None


def gather(
    db_path: str | Path,
    period: Period,
    settings: Settings,
    *,
    hall: str | None = None,
    now: float | None = None,
    rs: ReportSettings | None = None,
) -> Report:
    """Read the period's history from the database and build the report (CPU-bound: seconds
    per hall-day)."""
    rs = rs or ReportSettings.from_settings(settings)
    lo, hi = period.bounds(rs.tz)
    conn = connect(db_path)
    try:
        events = read_events(conn, lo, hi, hall)
        workflow = Workflow(complaint_rows(conn), callback_rows(conn), read_acks(conn))
    finally:
        conn.close()
    return report(
        events,
        period,
        rs,
        workflow=workflow,
        hall_filter=hall,
        generated_at=time.time() if now is None else now,
    )
