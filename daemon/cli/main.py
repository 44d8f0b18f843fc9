"""The `hallwatch` command: run, record, replay, simulate, demo, report, complaint, callback,
paper, drill, check-config."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.cli import logs
from hallwatch.daemon.config import settings as config
from hallwatch.daemon.config.sections import parse_broker_url
from hallwatch.daemon.config.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "broker", None):
        overrides["mqtt.url"] = args.broker
    if getattr(args, "db", None):
        overrides["store.path"] = args.db
    if getattr(args, "listen", None):
        overrides["http.listen"] = args.listen
    if getattr(args, "log_format", None):
        overrides["log.format"] = args.log_format
    path = args.config or os.environ.get("HALLWATCH_CONFIG")
    return config.load(path, os.environ, overrides)


def cmd_run(args: argparse.Namespace) -> int:
    from hallwatch.daemon.main import serve
    from hallwatch.daemon.store.events import StoreError

    settings = _settings(args)
    logs.configure(settings.log.level, settings.log.format)
    # `kill -USR1 PID` prints every thread's stack to stderr: for a daemon that seems stuck.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    failed: list[str] = []
    try:
        asyncio.run(serve(settings))
    except* StoreError as group:
        failed = [str(err) for err in group.exceptions]
    for message in failed:
        logging.getLogger("hallwatch").critical(
            "%s: stopping; events not stored were not acknowledged and stay with the broker",
            message,
        )
    return 1 if failed else 0


def cmd_record(args: argparse.Namespace) -> int:
    from hallwatch.daemon.offline.record import record

    settings = _settings(args)
    logs.configure(settings.log.level, settings.log.format)
    n = asyncio.run(record(settings, args.out, count=args.count, duration=args.duration))
    print(f"recorded {n} messages to {args.out}", file=sys.stderr)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from hallwatch.daemon.offline.replay import read_day, replay, summary

    settings = _settings(args)
    root, tz = settings.mqtt.topic_root, settings.hall.timezone
    try:
        result = replay(read_day(args.file), root=root, tz=tz)
        out: dict[str, Any] = summary(result)
        if args.estimates_out:
            from hallwatch.daemon.estimate.model import Estimator
            from hallwatch.daemon.offline.scoring import score

            est = Estimator(
                tz=tz,
                target_wait_s=settings.hall.target_wait_s,
                closing=settings.hall.closing,
                hours=settings.hours,
            )
            report = score(read_day(args.file), root=root, tz=tz, estimator=est)
            report.write_csv(args.estimates_out)
            out["estimates"] = report.summary()
        if args.alerts_out:
            from hallwatch.alerts.replay import write_jsonl
            from hallwatch.daemon.estimate.model import Estimator
            from hallwatch.daemon.offline.alerts import views_of_day

            rules = settings.alerts.rules
            views = views_of_day(
                read_day(args.file),
                root=root,
                tz=tz,
                estimator=Estimator(
                    tz=tz,
                    target_wait_s=settings.hall.target_wait_s,
                    closing=settings.hall.closing,
                    hours=settings.hours,
                ),
                calendar=settings.calendar.calendar(),
                heartbeat_timeout_s=settings.hall.heartbeat_timeout_s,
            )
            with open(args.alerts_out, "w", encoding="utf-8") as fh:
                out["alert_transitions"] = write_jsonl(views, rules, fh)
    except (OSError, ValueError) as err:
        print(f"hallwatch replay: {err}", file=sys.stderr)
        return 2
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def apply_knobs(profile: Any, assignments: Sequence[str]) -> Any:
    """`name=value` overrides of a profile's numeric knobs (the profile validates them)."""
    import dataclasses

    changes: dict[str, Any] = {}
    for item in assignments:
        name, sep, raw = item.partition("=")
        current = getattr(profile, name, None) if sep else None
        if not sep or name.startswith("_") or not isinstance(current, int | float):
            knobs = sorted(
                f.name
                for f in dataclasses.fields(profile)
                if isinstance(getattr(profile, f.name), int | float)
            )
            raise ValueError(f"--set {item!r}: use NAME=NUMBER with NAME one of {', '.join(knobs)}")
        try:
            changes[name] = type(current)(float(raw)) if isinstance(current, int) else float(raw)
        except ValueError:
            raise ValueError(f"--set {item!r}: {raw!r} is not a number") from None
    return dataclasses.replace(profile, **changes)


def cmd_simulate(args: argparse.Namespace) -> int:
    import dataclasses

    from hallwatch.sensors.profiles import PROFILES
    from hallwatch.sensors.simulator import publish_live, simulate_day, summarize, write_day

    if not args.out and not args.broker:
        print("hallwatch simulate: give --out FILE, --broker URL, or both", file=sys.stderr)
        return 2
    profile = PROFILES[args.profile]
    if args.date:
        from datetime import date

        profile = dataclasses.replace(profile, date=date.fromisoformat(args.date))
    if args.hall:
        profile = dataclasses.replace(profile, hall=args.hall)
    try:
        profile = apply_knobs(profile, args.set or [])
    except ValueError as err:
        print(f"hallwatch simulate: {err}", file=sys.stderr)
        return 2
    day = simulate_day(profile, args.seed, args.root)
    if args.out:
        truth = write_day(day, args.out)
        print(f"wrote {len(day.messages)} messages to {args.out}, ground truth to {truth}")
    if args.broker:
        broker = parse_broker_url(args.broker, key="--broker")
        speed = None if args.speed in (None, 0) else args.speed
        sent = asyncio.run(
            publish_live(
                day,
                host=broker.host,
                port=broker.port,
                speed=speed,
                username=broker.username,
                password=broker.password,
                on_progress=lambda at, n: print(
                    f"{time.strftime('%H:%M:%S', time.gmtime(at + 8 * 3600))} {n} sent",
                    flush=True,
                ),
            )
        )
        print(f"published {sent} messages to {broker.url()}")
    print(json.dumps(dataclasses.asdict(summarize(day)), ensure_ascii=False))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from hallwatch.daemon.cli.demo import main_demo

    return main_demo(args.broker, args.profile, args.seed, args.speed, args.listen, args.db)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hallwatch", description="Queue monitoring and alerting for public service halls."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="TOML settings file (or env HALLWATCH_CONFIG)")
        p.add_argument("--broker", help="mqtt://[user:pass@]HOST:PORT (overrides mqtt.url)")

    run = sub.add_parser("run", help="run the daemon")
    common(run)
    run.add_argument("--db", help="event database path (overrides store.path)")
    run.add_argument("--listen", help="HOST:PORT for HTTP (overrides http.listen)")
    run.add_argument(
        "--log-format", choices=["text", "json"], help="log lines (overrides log.format)"
    )
    run.set_defaults(func=cmd_run)

    rec = sub.add_parser("record", help="record input topics from the broker to a day file")
    common(rec)
    rec.add_argument("--out", required=True, help="JSON Lines file to append to")
    rec.add_argument("--count", type=int, help="stop after this many messages")
    rec.add_argument("--duration", type=float, help="stop after this many seconds")
    rec.set_defaults(func=cmd_record)

    rep = sub.add_parser("replay", help="replay a recorded day through the core, offline")
    rep.add_argument("file", help="recorded day (JSON Lines)")
    rep.add_argument("--config", help="TOML settings file (topic root, time zone, alert rules)")
    rep.add_argument(
        "--estimates-out",
        metavar="CSV",
        help="one row per issued ticket: estimate vs actual; summary gets MAE/RASE vs QL/LES/HOL",
    )
    rep.add_argument(
        "--alerts-out",
        metavar="JSONL",
        help="one line per alert transition (firing/escalated/resolved); nothing is sent",
    )
    rep.set_defaults(func=cmd_replay)

    from hallwatch.sensors.profiles import PROFILES

    sim = sub.add_parser("simulate", help="simulate a hall day: to a broker or a day file")
    sim.add_argument("--profile", choices=sorted(PROFILES), default="normal")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument(
        "--speed", type=float, help="x real time (60: a minute a second); 0 or none: at once"
    )
    sim.add_argument("--out", help="write the day (JSON Lines) and NAME.truth.jsonl beside it")
    sim.add_argument("--broker", help="publish live to mqtt://HOST:PORT")
    sim.add_argument("--date", help="the simulated business day, YYYY-MM-DD (profile's default)")
    sim.add_argument("--hall", help="hall id (profile's default)")
    sim.add_argument("--root", default="hall", help="topic root")
    sim.add_argument(
        "--set",
        action="append",
        metavar="KNOB=VALUE",
        help="override a numeric knob of the profile, e.g. expected_arrivals=450 (repeatable)",
    )
    sim.set_defaults(func=cmd_simulate)

    demo = sub.add_parser("demo", help="embedded broker + simulated hall + daemon")
    demo.add_argument("--broker", help="use this broker instead of the embedded one")
    demo.add_argument("--profile", choices=sorted(PROFILES), default="peak")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--speed", type=float, default=60.0, help="x real time (default 60)")
    demo.add_argument("--listen", default="127.0.0.1:9120", help="HTTP HOST:PORT")
    demo.add_argument("--db", help="event database (default: a temporary file)")
    demo.set_defaults(func=cmd_demo)

    from hallwatch.daemon.cli import staff as staff_cli

    staff_cli.add_parsers(sub)
    from hallwatch.daemon.reports import cli as report_cli

    report_cli.add_parser(sub)
    from hallwatch.daemon.cli import drill as drill_cli

    drill_cli.add_parser(sub)
    from hallwatch.daemon.cli import checkconfig

    checkconfig.add_parser(sub, _settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as err:
        print(f"hallwatch: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
