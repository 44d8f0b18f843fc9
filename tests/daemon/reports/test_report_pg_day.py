"""The proof, in real processes: a simulated day of three halls played over a real Mosquitto
into two `hallwatch run` on a private PostgreSQL (a pair: both store every event, each in its
own log), complaints, call-backs and paper submissions taken through one daemon's HTTP API and
answered through the other's; then the report built from PostgreSQL (`hallwatch report`, and
`GET /api/report` of a daemon of the pair) equals the report built from a SQLite replay of the
same day (tests/harness/report_equal.py)."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hallwatch.sensors.events import ComplaintEvent
from hallwatch.sensors.parse import parse
from hallwatch.sensors.profiles import PROFILES
from hallwatch.sensors.publish import publish_all
from hallwatch.sensors.simulator import simulate_day

from tests.harness.mosquitto import Mosquitto, find_mosquitto
from tests.harness.procs import DaemonChild, wait_for
from tests.harness.report_equal import (
    assert_same,
    day_keys,
    pg_logs,
    pg_report_equals_sqlite_replay,
    write_day,
    zip_content,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto not installed"),
]

DAY = date(2026, 3, 4)  # a Wednesday: a working day, long past whatever day the test runs
HALLS = (("peak", "h1", 7), ("outage", "h2", 3), ("quiet", "h3", 5))
TOKEN = "desk-token-0123456789abcdef"
ZONE = ZoneInfo("Asia/Shanghai")


def config(path: Path) -> Path:
    path.write_text(
        f"""
[api.tokens.desk]
token = "{TOKEN}"
scopes = ["complaints:write", "callbacks:write", "pii:read", "reports:read"]
""",
        encoding="utf-8",
    )
    return path


def the_day() -> list[tuple[str, bytes]]:
    """Three halls' simulated day in event-time order, and h2's core system down again at
    16:30 until the end (so the daemons are in an outage whenever the staff act)."""
    msgs = []
    for profile, hall, seed in HALLS:
        sim = simulate_day(dataclasses.replace(PROFILES[profile], date=DAY, hall=hall), seed)
        msgs += [(m.at, m.topic, m.payload) for m in sim.messages]
    down = datetime(DAY.year, DAY.month, DAY.day, 16, 30, tzinfo=ZONE)
    body = {"id": "sys-core:again", "ts": down.isoformat(), "state": "down", "detail": "又断了"}
    msgs.append((down.timestamp(), "hall/h2/system/core", body))
    msgs.sort(key=lambda m: m[0])
    return [(t, json.dumps(p, ensure_ascii=False).encode()) for _, t, p in msgs]


def call(
    base: str, method: str, path: str, body: dict[str, Any] | None = None, *, raw: bool = False
) -> Any:
    req = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=600) as resp:
            return resp.read() if raw else json.loads(resp.read())
    except urllib.error.HTTPError as err:
        raise AssertionError(f"{method} {path}: {err.code} {err.read()[:300]!r}") from None


def staff_actions(a: str, b: str, topic: list[tuple[str, str]]) -> None:
    """What the desk does, through A and B: a complaint registered through A is answered
    through B; two complaints from the topic are handed on and escalated; a call-back and a
    paper submission taken through A are seen (and the paper entered) through B."""
    c = {"hall": "h1", "complaint_id": "S1", "channel": "visit", "summary": "窗口态度"}
    made = call(a, "POST", "/api/v1/complaints", {**c, "received_by": "前台01"})
    assert made["created"]
    assert call(b, "GET", "/api/v1/complaints/h1/S1")["state"] == "registered"
    for action in ("verify", "approve", "answer"):
        step = {"action": action, "by": "科员", "proposal": "致歉并说明"}
        call(b, "POST", "/api/v1/complaints/h1/S1/transitions", step)
    assert call(a, "GET", "/api/v1/complaints/h1/S1")["state"] == "answered"
    (h1, c1), (h2, c2) = topic[0], topic[1]
    hand_on = {"action": "transfer", "by": "科长", "to_department": "归集科", "to_person": "王五"}
    call(b, "POST", f"/api/v1/complaints/{h1}/{c1}/transitions", hand_on)
    call(
        a, "POST", f"/api/v1/complaints/{h2}/{c2}/transitions", {"action": "escalate", "by": "科长"}
    )
    cb = {"hall": "h2", "name": "张三", "phone": "13912345678", "by": "前台01"}
    got = call(a, "POST", "/api/v1/callbacks", cb)["callback"]
    assert [x["id"] for x in call(b, "GET", "/api/v1/callbacks?hall=h2")["callbacks"]] == [
        got["id"]
    ]
    paper = {"hall": "h2", "service": "提取", "name": "李四", "documents": "身份证", "by": "前台01"}
    p = call(a, "POST", "/api/v1/paper", paper)["paper"]
    call(b, "POST", f"/api/v1/paper/{p['id']}/entered", {"by": "科员", "reference": "TQ-1"})


def test_report_from_postgres_equals_sqlite_replay(tmp_path: Path, pg_url: str) -> None:
    """Three halls' day through a pair of daemons on PostgreSQL, staff acting through both:
    every event in both logs once, the registers shared, and the report from PostgreSQL (both
    logs, deduplicated) has the same tables and charts as the one from a SQLite replay."""
    messages = the_day()
    day_file = write_day(tmp_path / "day.jsonl", messages)
    expected, _ = day_keys(messages)
    topic = sorted(
        {
            (ev.hall, ev.complaint_id)
            for t, p in messages
            if isinstance(ev := parse(t, p, "hall"), ComplaintEvent)
        }
    )
    assert len(topic) >= 2, topic
    cfg = config(tmp_path / "hallwatch.toml")
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    pair = [
        DaemonChild(
            tmp_path / name,
            broker.url,
            config=cfg,
            client_id=f"hallwatch-{name}",
            env={"HALLWATCH_STORE_URL": pg_url, "HALLWATCH_STORE_INSTANCE": name},
        )
        for name in ("a", "b")
    ]
    try:
        for d in pair:
            d.start()
        publish_all("127.0.0.1", broker.port, messages, client_id="devices")
        done = {"a": (expected, expected), "b": (expected, expected)}
        wait_for(lambda: pg_logs(pg_url) == done, 300, "every event once in both logs")
        with psycopg.connect(pg_url) as con:
            wait_for(
                lambda: (
                    con.execute("SELECT count(*) FROM hallwatch.complaints").fetchone()[0]
                    == len(topic)
                ),
                60,
                "the topic's complaints imported",
            )
        a, b = (d.base for d in pair)
        staff_actions(a, b, topic)
        # The report API of a daemon of the pair reads PostgreSQL too (compared below).
        query = f"/api/report?from={DAY}&to={DAY}&format=zip"
        from_api = zip_content(call(b, "GET", query, raw=True))
        for d in pair:
            assert d.stop() == 0, d.log.read_text()[-3000:]
    finally:
        for d in pair:
            if d.exited() is None:
                d.stop()
        broker.stop()
    with psycopg.connect(pg_url) as con:
        shared = {
            t: con.execute(f"SELECT count(*) FROM hallwatch.{t}").fetchone()[0]  # type: ignore[index]
            for t in ("complaints", "callbacks", "paper_intake")
        }
    assert shared == {"complaints": len(topic) + 1, "callbacks": 1, "paper_intake": 1}
    result = pg_report_equals_sqlite_replay(
        pg_url=pg_url,
        day=day_file,
        first=DAY,
        last=DAY,
        workdir=tmp_path / "compare",
        config=cfg,
        actions=lambda base: staff_actions(base, base, topic),
    )
    assert_same(from_api, result.content, "GET /api/report != hallwatch report (PostgreSQL)")
    print(f"\n{len(messages)} messages, {expected} events in each instance's log")
    print(result.line())
    print("tables:", ", ".join(f"{n[:-4]} {r}" for n, r in sorted(result.tables.items())))
    assert result.replay_events == expected
    assert result.hall_days == len(HALLS) and result.tickets > 0
    assert result.tables["05-complaints.csv"] == len(topic)
