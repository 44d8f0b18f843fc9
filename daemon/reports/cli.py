"""`hallwatch report` and `GET /api/report`: read the stored history, replay it, write the report.

The edge of the reports: a read-only SQLite connection (the daemon may be writing; WAL lets a
reader in), the events of the period in arrival order, and the records beside them: the alert
service's acknowledgements (`alert_state`), the complaint workflow (`complaints`,
`complaint_history`) and the outage call-back register (`callbacks`). A table that is not there
gives None, and the report shows "—" rather than a guess. Figures: `reports.figures`; page and
CSVs: `hallwatch.daemon.reports.html`.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import sqlite3
import sys
import time
import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web
from hallwatch.alerts.rules import RuleEngine
from hallwatch.daemon.base import pii
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config.alerts import RuleSettings
from hallwatch.daemon.config.settings import Settings, load
from hallwatch.daemon.reports import html as report_html
from hallwatch.daemon.reports.figures import (
    Ack,
    CallbackRecord,
    ComplaintRecord,
    Period,
    Report,
    ReportSettings,
    Stored,
    Workflow,
    report,
)

log = logging.getLogger("hallwatch.report")

MAX_DAYS_HTTP = 93  # a quarter: the API replays on the daemon's machine, one report at a time
YEARS = range(2000, 2101)  # a report's days lie in these years


def period_of(start: str, end: str, *, max_days: int | None = None) -> Period:
    """The period from two YYYY-MM-DD strings; ValueError with a reason a person can act on."""
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise ValueError(f"dates are YYYY-MM-DD: from={start[:20]!r}, to={end[:20]!r}") from None
    for d in (first, last):
        if d.year not in YEARS:
            raise ValueError(f"{d}: a report covers the years {YEARS.start}-{YEARS.stop - 1}")
    period = Period(first, last)  # ValueError when to is before from
    if max_days is not None and period.days > max_days:
        raise ValueError(f"at most {max_days} days per report; use the CLI for more")
    return period


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
    """Stored events with event time in [lo, hi), of one hall or all, in arrival order."""
    sql = "SELECT hall, topic, ts, payload FROM events WHERE ts >= ? AND ts < ?"
    args: list[Any] = [lo, hi]
    if hall is not None:
        sql += " AND hall = ?"
        args.append(hall)
    rows = conn.execute(sql + " ORDER BY seq", args).fetchall()
    return [Stored(str(h), str(t), float(ts), bytes(p)) for h, t, ts, p in rows]


def read_acks(conn: sqlite3.Connection) -> list[Ack]:
    """Acknowledgements: the alert service's permanent log (`alert_acks`), plus those of
    episodes still firing that are only in its saved state."""
    acks: dict[tuple[str, str, str, float], Ack] = {}
    if has_table(conn, "alert_acks"):
        for hall, alert, subject, since, by, at in conn.execute(
            "SELECT hall, alert, subject, started_at, acked_by, acked_at FROM alert_acks"
        ):
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


# -- the command -------------------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """`hallwatch report`; `subparsers` is build_parser's `add_subparsers()` result."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "report", help="HTML report with charts and CSVs for the centre, from stored history"
    )
    p.add_argument("--from", dest="start", required=True, help="first business day, YYYY-MM-DD")
    p.add_argument("--to", dest="end", required=True, help="last business day, YYYY-MM-DD")
    p.add_argument("--hall", help="one hall only")
    p.add_argument("--out", required=True, help="directory for report.html and the CSV files")
    p.add_argument("--db", help="event database (overrides store.path)")
    p.add_argument("--config", help="TOML settings file (or env HALLWATCH_CONFIG)")
    p.add_argument("--zip", action="store_true", help="also write report.zip with everything")
    p.set_defaults(func=cmd_report)
    return p


def cmd_report(args: argparse.Namespace) -> int:
    try:
        period = period_of(args.start, args.end)
        overrides = {"store.path": args.db} if args.db else {}
        settings = load(args.config or os.environ.get("HALLWATCH_CONFIG"), os.environ, overrides)
        started = time.monotonic()
        rep = gather(settings.store.path, period, settings, hall=args.hall)
    except (ValueError, OSError, sqlite3.Error) as err:
        if isinstance(err, ConfigError):
            raise
        print(f"hallwatch report: {err}", file=sys.stderr)
        return 2
    paths = report_html.write(rep, args.out)
    if args.zip:
        zpath = Path(args.out) / "report.zip"
        zpath.write_bytes(report_html.zip_bytes(rep))
        paths.append(zpath)
    print(
        f"wrote {paths[0]} and {len(paths) - 1} more files: {len(rep.days)} hall-days, "
        f"{sum(len(d.visits) for d in rep.days)} tickets ({time.monotonic() - started:.1f} s)",
        file=sys.stderr,
    )
    return 0


# -- the HTTP route ----------------------------------------------------------------------------


def masked_zip(rep: Report) -> bytes:
    """The report's zip with phone and ID numbers masked in every file."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in report_html.files(rep).items():
            bom = data.startswith(b"\xef\xbb\xbf")
            text = pii.mask_text(data.decode("utf-8-sig"))
            z.writestr(name, (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return buf.getvalue()


def add_routes(
    app: web.Application,
    db_path: str | Path,
    settings: Settings,
    *,
    may_read_pii: Callable[[web.Request], bool],
) -> None:
    """`GET /api/report?from=YYYY-MM-DD&to=YYYY-MM-DD[&hall=H][&format=html|zip]`.

    The report is computed in a worker thread, one at a time, so ingest keeps going. It names
    staff, quotes complaints and costs seconds of CPU per hall-day: `web.auth` asks for
    `reports:read`, and masks phone and ID numbers in the page without `pii:read` (here, too,
    inside the zip, which it cannot read: `may_read_pii(request)`, the web side's answer).
    """
    lock = asyncio.Lock()

    def error(status: int, message: str) -> web.Response:
        return web.json_response({"error": message}, status=status)

    async def handler(request: web.Request) -> web.StreamResponse:
        q = request.query
        if "from" not in q or "to" not in q:
            return error(400, "from and to are required (YYYY-MM-DD)")
        try:
            period = period_of(q["from"], q["to"], max_days=MAX_DAYS_HTTP)
        except ValueError as err:
            return error(400, str(err))
        fmt = q.get("format", "html")
        if fmt not in ("html", "zip"):
            return error(400, "format must be html or zip")
        hall = q.get("hall") or None
        async with lock:
            try:
                rep = await asyncio.to_thread(gather, db_path, period, settings, hall=hall)
            except (OSError, sqlite3.Error) as err:
                log.warning("report failed: %s", err)
                return error(503, "event database unavailable")
            if fmt == "zip":
                show = may_read_pii(request)
                body = await asyncio.to_thread(report_html.zip_bytes if show else masked_zip, rep)
                name = f"hallwatch-report-{period.start}-{period.end}.zip"
                return web.Response(
                    body=body,
                    content_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'},
                )
            html = await asyncio.to_thread(report_html.render, rep)
        return web.Response(
            text=html,
            content_type="text/html",
            charset="utf-8",
            headers={
                # Self-contained: nothing to fetch, nothing to run.
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            },
        )

    app.router.add_get("/api/report", handler)
