"""`hallwatch drill run|report`: play a drill scenario into the running daemon, then report it.

`run` publishes a scenario (sensors.drill: peak, outage, complaint) in real time to the broker the
daemon listens to, for a drill hall (an id starting with `drill`): everything it causes is
marked 【演练】 and reaches only that hall's own roles (alerts.drill). `report` reads the day from
the database, like `hallwatch report`, and prints who acknowledged, how fast, and which of the
plan's steps were missed (reports.drill).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hallwatch.alerts.drill import is_drill
from hallwatch.daemon.config.sections import parse_broker_url
from hallwatch.daemon.config.settings import load
from hallwatch.daemon.reports import drill as drill_report
from hallwatch.daemon.reports.history import gather
from hallwatch.daemon.reports.inputs import period_of
from hallwatch.sensors.drill import SCENARIOS, scenario
from hallwatch.sensors.publish import publish_all


def add_parser(sub: Any) -> None:
    p = sub.add_parser("drill", help="drills (预案学习): play a scenario, then the drill report")
    dsub = p.add_subparsers(dest="what", required=True)
    run = dsub.add_parser("run", help="play a scenario into the running daemon, in real time")
    run.add_argument("scenario", choices=SCENARIOS)
    run.add_argument("--hall", default="drill", help="a drill hall: its id starts with 'drill'")
    run.add_argument("--minutes", type=float, help="how long (peak 20, outage 35 by default)")
    run.add_argument("--broker", help="mqtt://HOST:PORT (default: the settings' mqtt.url)")
    run.add_argument("--speed", type=float, default=1.0, help=argparse.SUPPRESS)  # tests only
    rep = dsub.add_parser("report", help="who acknowledged, how fast, which steps were missed")
    rep.add_argument("--hall", default="drill")
    rep.add_argument("--date", help="the drill's day, YYYY-MM-DD (default: today)")
    rep.add_argument("--db", help="event database (overrides store.path)")
    for q in (run, rep):
        q.add_argument("--config", help="TOML settings file (or env HALLWATCH_CONFIG)")
    p.set_defaults(func=cmd_drill)


def cmd_drill(args: argparse.Namespace) -> int:
    if not is_drill(args.hall):
        print(
            f"hallwatch drill: {args.hall!r} is not a drill hall: a drill runs only in a hall "
            "whose id starts with 'drill' (its messages are marked 【演练】 and go to its own "
            "roles only)",
            file=sys.stderr,
        )
        return 2
    overrides = {}
    if getattr(args, "db", None):
        overrides["store.path"] = args.db
    if getattr(args, "broker", None):
        overrides["mqtt.url"] = args.broker
    settings = load(args.config or os.environ.get("HALLWATCH_CONFIG"), os.environ, overrides)
    if args.what == "run":
        return _run(args, settings.mqtt.url, settings.mqtt.topic_root)
    zone = ZoneInfo(settings.hall.timezone)
    day = args.date or datetime.now(zone).date().isoformat()
    try:
        rep = gather(settings.store, period_of(day, day), settings, hall=args.hall)
    except (ValueError, OSError, sqlite3.Error) as err:
        print(f"hallwatch drill report: {err}", file=sys.stderr)
        return 2
    print(drill_report.text(rep, drill_report.findings(rep)))
    return 0


def _run(args: argparse.Namespace, url: str, root: str) -> int:
    broker = parse_broker_url(url, key="mqtt.url")
    steps = scenario(args.scenario, root, args.hall, minutes=args.minutes)
    run_id = f"drill-{int(time.time())}"
    total = steps[-1][0] if steps else 0.0
    print(
        f"演练开始：{args.scenario}，大厅 {args.hall}，约 {total / 60:.0f} 分钟，"
        f"{len(steps)} 条设备消息 → {broker.host}:{broker.port}",
        file=sys.stderr,
    )
    started = time.monotonic()
    i = 0
    while i < len(steps):
        offset = steps[i][0]
        wait = started + offset / args.speed - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        now_ms = int(time.time() * 1000)
        batch = []
        while i < len(steps) and steps[i][0] == offset:
            _, topic, body = steps[i]
            payload = {"id": f"{run_id}:{i}", "ts": now_ms, **body}
            batch.append((topic, json.dumps(payload, ensure_ascii=False).encode()))
            i += 1
        publish_all(broker.host, broker.port, batch, client_id=f"{run_id}-{i}")
    print(f"演练结束：hallwatch drill report --hall {args.hall}", file=sys.stderr)
    return 0
