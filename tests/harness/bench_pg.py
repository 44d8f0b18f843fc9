"""`python -m tests.harness.bench postgres`: ingest events/s with the event store in PostgreSQL
against SQLite, in the same run on the same private Mosquitto, and the outbox's failover time
(a sender's kill -9 to the survivor's first delivery; tests/harness/failover.py).

Both engines as the daemon runs them by default (SQLite synchronous=FULL; PostgreSQL a private
server of tests/harness/postgres.py, fsync on, as a real one would be).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from tests.harness.bench import _daemon_rate
from tests.harness.failover import run_failover
from tests.harness.mosquitto import Mosquitto
from tests.harness.postgres import Postgres


def run(events: int, lease_s: float, notifications: int) -> str:
    with tempfile.TemporaryDirectory(prefix="hallwatch-bench-pg-") as tmp:
        work = Path(tmp)
        mosq = Mosquitto(work / "mosquitto")
        mosq.start()
        # Its own folder: the postgres user cannot enter this 0700 one of root's.
        pg_dir = Path(tempfile.mkdtemp(prefix="pg-hallwatch-bench-", dir="/tmp"))
        pg = Postgres(pg_dir, fsync=True)
        pg.start()
        try:
            (work / "lite").mkdir()
            lite = _daemon_rate(mosq.url, events, work / "lite", run="lite")
            print(f"ingest, SQLite (FULL):          {lite:,.0f} ev/s", flush=True)
            (work / "pg-ingest").mkdir()
            env = {"HALLWATCH_STORE_URL": pg.database("ingest"), "HALLWATCH_STORE_INSTANCE": "b"}
            post = _daemon_rate(mosq.url, events, work / "pg-ingest", env, run="pg")
            print(f"ingest, PostgreSQL (fsync on):  {post:,.0f} ev/s", flush=True)
            (work / "failover").mkdir()
            f = asyncio.run(
                run_failover(pg.database("failover"), work / "failover", notifications, lease_s)
            )
            twice = sum(1 for v in f.shown.values() if v > 1)
            print(
                f"failover (lease {lease_s:g} s): {f.failover_s:.2f} s from the kill to the"
                f" survivor's first delivery; {f.accepted_before} delivered before the kill,"
                f" {len(f.after)} after; shown twice: {twice}, missing:"
                f" {notifications - len(f.shown)}",
                flush=True,
            )
        finally:
            pg.stop()
            mosq.stop()
            shutil.rmtree(pg_dir, ignore_errors=True)
    return (
        f"postgres: ingest PostgreSQL {post:.0f} ev/s vs SQLite {lite:.0f} ev/s"
        f" (ratio {post / lite:.2f}); failover {f.failover_s:.2f} s at lease {lease_s:g} s"
    )


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.harness.bench postgres")
    ap.add_argument("--events", type=int, default=20000, help="events to ingest, each engine")
    ap.add_argument("--lease-s", type=float, default=3.0, help="the outbox claim lease")
    ap.add_argument("--notifications", type=int, default=40, help="in the failover run")
    args = ap.parse_args(argv)
    started = time.monotonic()
    print(run(args.events, args.lease_s, args.notifications))
    print(f"({args.events} events each, {time.monotonic() - started:.1f} s)")
    return 0
