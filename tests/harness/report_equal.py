"""A report built from PostgreSQL against the one built from a SQLite replay of the same day.

For any test that ran a day through daemons on PostgreSQL (`store.url`) and wants to know that
nothing was lost or counted twice on the way: `pg_report_equals_sqlite_replay(...)` replays the
recorded day (the messages the devices published, JSON Lines as `hallwatch record` writes them)
through `hallwatch run` on a SQLite file of its own over a private Mosquitto, writes the report
of the period from both with `hallwatch report` (processes, as an operator would), and compares
their content: every table (the CSV files) and the page with its charts, the generation time
taken out. It raises `ReportsDiffer` naming the first differences; it returns the figures.

`actions(base_url)`, if given, runs against the replay's daemon once the day is in and its
complaints imported: the same staff actions (complaint steps, call-backs) the test took through
the HTTP API of the PostgreSQL daemons, so the registers hold the same records on both sides.

`config` is the settings file both reports read (the alert rules, hours and calendar shape the
figures). The replay's daemon runs with `replay_config` (default: `config`): it evaluates the
alert rules like any daemon and sends what that file's channels name, so give it one without
channels while a receiver of the test is still counting deliveries.

Use (after the PostgreSQL daemons stored the day; `write_day` makes the file from messages):

    result = pg_report_equals_sqlite_replay(
        pg_url=url, day=write_day(tmp / "day.jsonl", messages), first=DAY, last=DAY,
        workdir=tmp / "compare", config=cfg, replay_config=quiet_cfg,
    )
    print(result.line())
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from hallwatch.daemon.offline.replay import read_day
from hallwatch.sensors.events import ComplaintEvent, Rejection
from hallwatch.sensors.parse import parse
from hallwatch.sensors.publish import publish_all

from tests import REPO
from tests.harness.mosquitto import Mosquitto
from tests.harness.procs import DaemonChild, wait_for

STAMP = re.compile(r"生成时间：[^<]*")  # the page's generation time: not content
STORE_ENV = ("HALLWATCH_STORE_URL", "HALLWATCH_STORE_INSTANCE", "HALLWATCH_STORE_PATH")


class ReportsDiffer(AssertionError):
    """The two reports differ; the message names the files and lines."""


@dataclass(frozen=True)
class Compared:
    """What was compared, as the tests print it."""

    files: int  # the page and the CSV tables
    tables: dict[str, int]  # CSV file -> rows (without the header)
    hall_days: int
    tickets: int
    pg_s: float  # `hallwatch report` from PostgreSQL, wall seconds
    sqlite_s: float  # from the SQLite replay
    replay_events: int  # events the SQLite replay stored
    content: dict[str, str]  # the report's content (report_content), to compare more against

    def line(self) -> str:
        rows = sum(self.tables.values())
        return (
            f"report from PostgreSQL == report from SQLite replay: {self.files} files,"
            f" {len(self.tables)} tables, {rows} rows, {self.hall_days} hall-days,"
            f" {self.tickets} tickets; replay stored {self.replay_events} events;"
            f" report {self.pg_s:.1f} s (PostgreSQL) / {self.sqlite_s:.1f} s (SQLite)"
        )


def report_content(out: Path) -> dict[str, str]:
    """File name -> text of a written report (the CSVs, report.html without its generation
    time)."""
    return _content({p.name: p.read_bytes() for p in sorted(out.iterdir())}, str(out))


def zip_content(data: bytes) -> dict[str, str]:
    """The same of a report's zip (`GET /api/report?format=zip`)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return _content({n: z.read(n) for n in z.namelist()}, "the zip")


def _content(files: Mapping[str, bytes], where: str) -> dict[str, str]:
    content = {}
    for name, data in files.items():
        if name.endswith(".csv"):
            content[name] = data.decode("utf-8-sig")
        elif name == "report.html":
            content[name] = STAMP.sub("生成时间：—", data.decode("utf-8"))
    if "report.html" not in content:
        raise ReportsDiffer(f"{where}: no report.html")
    return content


def differences(a: Mapping[str, str], b: Mapping[str, str], most: int = 12) -> list[str]:
    """The first `most` differences between two reports' content, one line each."""
    out = []
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            out.append(f"{name}: only in {'the first' if name in a else 'the second'}")
            continue
        if a[name] == b[name]:
            continue
        la = a[name].splitlines() if name.endswith(".csv") else _html_lines(a[name])
        lb = b[name].splitlines() if name.endswith(".csv") else _html_lines(b[name])
        if len(la) != len(lb):
            out.append(f"{name}: {len(la)} lines against {len(lb)}")
        for i, (x, y) in enumerate(zip(la, lb, strict=False)):
            if x != y:
                out.append(f"{name}:{i + 1}: {x[:160]!r} != {y[:160]!r}")
                if len(out) >= most:
                    return out
    return out[:most]


def _html_lines(text: str) -> list[str]:
    return re.sub(r">\s*<", ">\n<", text).splitlines()


def assert_same(a: Mapping[str, str], b: Mapping[str, str], what: str) -> None:
    diff = differences(a, b)
    if diff:
        raise ReportsDiffer(f"{what}:\n  " + "\n  ".join(diff))


def _env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in STORE_ENV}
    env.update(extra)
    return env


def write_report(
    out: Path,
    first: date,
    last: date,
    *,
    env: Mapping[str, str] = {},
    db: Path | None = None,
    config: Path | None = None,
    timeout: float = 900,
) -> float:
    """`hallwatch report --from first --to last --out out` as a process (PostgreSQL when `env`
    names HALLWATCH_STORE_URL, else `db`); returns its wall seconds."""
    cmd = [sys.executable, "-m", "hallwatch.daemon.cli", "report", "--out", str(out)]
    cmd += ["--from", first.isoformat(), "--to", last.isoformat()]
    if db is not None:
        cmd += ["--db", str(db)]
    if config is not None:
        cmd += ["--config", str(config)]
    started = time.monotonic()
    done = subprocess.run(
        cmd, cwd=REPO, env=_env(env), capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"hallwatch report exited {done.returncode}: {done.stderr[-2000:]}")
    return time.monotonic() - started


def day_keys(messages: Iterable[tuple[str, bytes]], root: str = "hall") -> tuple[int, set[str]]:
    """(events the store keeps: distinct valid (hall, id), keys of the complaint events)."""
    keys, complaints = set(), set()
    for topic, payload in messages:
        ev = parse(topic, payload, root)
        if isinstance(ev, Rejection):
            continue
        keys.add((ev.hall, ev.id))
        if isinstance(ev, ComplaintEvent):
            complaints.add(f"{ev.hall}/{ev.complaint_id}")
    return len(keys), complaints


def pg_logs(url: str) -> dict[str, tuple[int, int]]:
    """Each instance's event log in PostgreSQL: instance -> (events, distinct (hall, id)); a
    log holding an event twice has the first figure above the second."""
    import psycopg  # only the PostgreSQL tests need it

    out = {}
    with psycopg.connect(url) as con:
        schemas = con.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'events'"
            " AND table_schema LIKE 'hallwatch\\_%' ORDER BY 1"
        ).fetchall()
        for (schema,) in schemas:
            row = con.execute(f'SELECT count(*), count(DISTINCT key) FROM "{schema}".events')
            got = row.fetchone()
            assert got is not None
            out[schema.removeprefix("hallwatch_")] = (int(got[0]), int(got[1]))
    return out


def _count(db: Path, sql: str) -> int:
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        row = con.execute(sql).fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def replay_into_sqlite(
    day: Path,
    workdir: Path,
    *,
    config: Path | None = None,
    actions: Callable[[str], None] | None = None,
    timeout: float = 300,
) -> tuple[Path, int]:
    """The recorded `day` through `hallwatch run` on a SQLite file of its own over a private
    Mosquitto; `actions(base_url)` once every event is stored and every topic complaint
    imported; then SIGTERM. Returns (the database, events stored)."""
    messages = list(read_day(day))
    expected, complaints = day_keys(messages)
    broker = Mosquitto(workdir / "mosquitto")
    broker.start()
    d = DaemonChild(
        workdir / "daemon", broker.url, config=config, client_id="hallwatch-sqlite-replay"
    )
    d.env = _env({k: v for k, v in d.env.items() if k not in STORE_ENV})
    try:
        d.start()
        publish_all("127.0.0.1", broker.port, messages, client_id="replay-publisher")
        wait_for(lambda: d.health()["last_seq"] == expected, timeout, f"{expected} events stored")
        wait_for(
            lambda: _count(d.db, "SELECT count(*) FROM complaints") >= len(complaints),
            60,
            f"{len(complaints)} topic complaints imported",
        )
        if actions is not None:
            actions(d.base)
        code = d.stop()
        if code != 0:
            raise RuntimeError(f"replay daemon exited {code}; log: {d.log}")
    finally:
        if d.exited() is None:
            d.stop()
        broker.stop()
    return d.db, _count(d.db, "SELECT count(*) FROM events")


def pg_report_equals_sqlite_replay(
    *,
    pg_url: str,
    day: Path,
    first: date,
    last: date,
    workdir: Path,
    config: Path | None = None,
    replay_config: Path | None = None,
    actions: Callable[[str], None] | None = None,
) -> Compared:
    """Build the report of [first, last] from PostgreSQL (every instance's log there) and from
    a SQLite replay of `day`; raise `ReportsDiffer` unless their content is the same. Call it
    once the PostgreSQL daemons have stored the day (stopped or not)."""
    pg_out, lite_out = workdir / "report-postgres", workdir / "report-sqlite"
    pg_s = write_report(pg_out, first, last, env={"HALLWATCH_STORE_URL": pg_url}, config=config)
    db, stored = replay_into_sqlite(
        day, workdir / "replay", config=replay_config or config, actions=actions
    )
    lite_s = write_report(lite_out, first, last, db=db, config=config)
    a, b = report_content(pg_out), report_content(lite_out)
    assert_same(a, b, "report from PostgreSQL != report from the SQLite replay")
    tables = {
        n: max(0, len(list(csv.reader(io.StringIO(t)))) - 1)
        for n, t in a.items()
        if n.endswith(".csv")
    }
    days, tickets = _summary(a)
    return Compared(len(a), tables, days, tickets, pg_s, lite_s, stored, a)


def _summary(content: Mapping[str, str]) -> tuple[int, int]:
    """(hall-days, tickets) from the report's summary table (one row a hall)."""
    rows = list(csv.DictReader(io.StringIO(content.get("01-summary.csv", ""))))
    days = sum(int(r["天数"]) for r in rows if r.get("天数", "").isdigit())
    return days, sum(int(r["取号"]) for r in rows if r.get("取号", "").isdigit())


def write_day(path: Path, messages: Iterable[tuple[str, bytes]]) -> Path:
    """A recorded day (JSON Lines) of (topic, payload) in publish order."""
    with open(path, "w", encoding="utf-8") as fh:
        for topic, payload in messages:
            fh.write(
                json.dumps({"topic": topic, "payload": json.loads(payload)}, ensure_ascii=False)
            )
            fh.write("\n")
    return path
