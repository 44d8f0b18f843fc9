"""`hallwatch report`: read the stored history, replay it, write the report's files.

The history is the SQLite file (`store.path`, `--db`), or PostgreSQL when `store.url` is set:
every instance's event log there and the centre's registers (reports/pgsource.py).

History: `reports.history`; figures: `reports.figures`; page and CSVs: `reports.html`. The same
report over HTTP (`GET /api/report`) is `hallwatch.daemon.web.report_api`.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config.settings import load
from hallwatch.daemon.reports import html as report_html
from hallwatch.daemon.reports.history import gather
from hallwatch.daemon.reports.inputs import period_of


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """`hallwatch report`; `subparsers` is build_parser's `add_subparsers()` result."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "report", help="HTML report with charts and CSVs for the centre, from stored history"
    )
    p.add_argument("--from", dest="start", required=True, help="first business day, YYYY-MM-DD")
    p.add_argument("--to", dest="end", required=True, help="last business day, YYYY-MM-DD")
    p.add_argument("--hall", help="one hall only")
    p.add_argument("--out", required=True, help="directory for report.html and the CSV files")
    p.add_argument(
        "--db", help="event database (overrides store.path; with store.url, PostgreSQL is read)"
    )
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
        rep = gather(settings.store, period, settings, hall=args.hall)
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
