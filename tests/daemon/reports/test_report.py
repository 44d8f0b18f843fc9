"""Reports: figures recomputed from the stored events agree with the simulator's ground truth."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import dataclasses
import functools
import io
import json
import shutil
import sqlite3
import statistics
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.rules import Episode, RuleEngine
from hallwatch.daemon.config.alerts import RuleSettings
from hallwatch.daemon.config.api import Token
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.reports import charts as report_charts
from hallwatch.daemon.reports import cli as report_cli
from hallwatch.daemon.reports import history as report_history
from hallwatch.daemon.reports import html as report_html
from hallwatch.daemon.reports import svgchart
from hallwatch.daemon.reports import tables as report_tables
from hallwatch.daemon.reports.figures import Report, build
from hallwatch.daemon.reports.incidents import tally
from hallwatch.daemon.reports.inputs import Ack, CallbackRecord, ComplaintRecord, Period, Workflow
from hallwatch.daemon.reports.stats import nearest_rank
from hallwatch.daemon.store.events import NewEvent, Store
from hallwatch.daemon.web import report_api
from hallwatch.daemon.web.server import make_app
from hallwatch.sensors.profiles import PROFILES, hm
from hallwatch.sensors.simulator import Day, TicketTruth, epoch, simulate_day

ZONE = ZoneInfo("Asia/Shanghai")
# A peak day just before the National Day holiday (1-7 October 2026), an outage day after it
# and a quiet day in a second hall; 10 October is a Saturday make-up working day.
DAYS = (
    ("peak", date(2026, 9, 30), "h1"),
    ("outage", date(2026, 10, 8), "h1"),
    ("quiet", date(2026, 10, 9), "h2"),
)
PERIOD = Period(date(2026, 9, 28), date(2026, 10, 11))


@dataclass(frozen=True)
class History:
    db: Path
    sims: dict[str, Day]
    report: Report


def simulated(profile: str, day: date, hall: str) -> Day:
    return simulate_day(dataclasses.replace(PROFILES[profile], date=day, hall=hall), 1)


async def _store(db: Path, sims: list[Day]) -> None:
    async with Store(db) as store:
        for sim in sims:
            # The simulator numbers a device's events from 1 every day; real devices' ids are
            # unique, so the day goes into the id (else day two would be dropped as repeats).
            batch = []
            for m in sim.messages:
                payload = {**m.payload, "id": f"{sim.profile.date:%Y%m%d}-{m.payload['id']}"}
                body = json.dumps(payload, ensure_ascii=False).encode()
                hall = m.topic.split("/")[1]
                batch.append(NewEvent(hall, payload["id"], m.topic, m.at, m.at + 0.05, body))
            for i in range(0, len(batch), 500):
                await store.commit_batch(batch[i : i + 500])
            await store.commit_batch(batch[:50])  # redelivered: stored once


@functools.cache
def built_history() -> History:
    """The three days stored in a real database and reported on once per test session."""
    root = Path(tempfile.mkdtemp(prefix="hallwatch-report-"))
    atexit.register(shutil.rmtree, root, True)
    sims = {p: simulated(p, d, h) for p, d, h in DAYS}
    db = root / "hallwatch.db"
    asyncio.run(_store(db, list(sims.values())))
    now = epoch(sims["quiet"].profile, hm("18:00"))
    rep = report_history.gather(db, PERIOD, Settings(), now=now)
    return History(db, sims, rep)


@pytest.fixture(scope="module")
def history() -> History:
    return built_history()


def truth_waits(truth: list[TicketTruth]) -> list[float]:
    return sorted(t.called_at - t.issued_at for t in truth if t.called_at is not None)


def test_waits_and_tickets_served_per_day_match_the_ground_truth(history: History) -> None:
    """Median, 90th percentile and share over 20 minutes of every day's waits, and the tickets
    issued and served, are the simulator's own."""
    rep = history.report
    for profile, day, hall in DAYS:
        truth = history.sims[profile].truth
        waits = truth_waits(truth)
        [(d, w)] = [(d, w) for d, w in rep.by_day(hall) if d.day == day]
        assert w.n == len(waits)
        assert w.median_s == pytest.approx(statistics.median(waits), abs=0.01)
        assert w.p90_s == pytest.approx(nearest_rank(waits, 0.9), abs=0.01)
        assert w.over_share == pytest.approx(sum(x >= 1200 for x in waits) / len(waits))
        assert sum(v.leg == 0 for v in d.visits) == sum(t.leg == 0 for t in truth)
        assert sum(v.outcome == "completed" for v in d.visits) == sum(
            t.outcome == "completed" for t in truth
        )
    peak = truth_waits(history.sims["peak"].truth)
    assert statistics.median(peak) > 60 and max(peak) > 1200  # a real peak day


def test_waits_by_service_and_hour_match_the_ground_truth(history: History) -> None:
    """Per service and per hour of issue, the counts and medians are the simulator's."""
    rep = history.report
    truth = history.sims["peak"].truth + history.sims["outage"].truth
    for service, served, w, acc in rep.by_service("h1"):
        mine = [t for t in truth if t.service == service]
        assert served == sum(t.outcome == "completed" for t in mine)
        assert w.median_s == pytest.approx(statistics.median(truth_waits(mine)), abs=0.01)
        assert acc.n > 0 and acc.mae_s is not None and acc.mae_s < 600
    hours = rep.by_hour("h1")
    for h in hours:
        mine = [t for t in truth if datetime.fromtimestamp(t.issued_at, ZONE).hour == h.hour]
        assert h.waits.n == len(truth_waits(mine))
    tags = {h.tag: h.hour for h in hours if h.tag}
    assert set(tags) == {"busiest", "quietest"}
    assert tags["busiest"] == 10  # the profiles' morning peak at 10-11


def test_peak_episode_of_the_peak_day(history: History) -> None:
    """The peak day triggers the plan in the morning, escalates, opens the emergency window
    when the simulated hall did, and its figures are the day's real ones."""
    sim = history.sims["peak"]
    peaks = [p for p in history.report.peaks if p.hall == "h1"]
    assert peaks, "the peak day must trigger the plan"
    first = peaks[0]
    assert hm("09:00") <= first.fired_at - epoch(sim.profile, 0) <= hm("10:00")
    assert first.escalations and first.level == 2
    assert first.peak_headcount >= 20 and first.resolved_at is not None
    opened = [
        m.at
        for m in sim.messages
        if "/window/" in m.topic and m.payload["emergency"] and m.payload["state"] == "open"
    ]
    assert [t for _, t in first.emergency_opened] == [t for t in opened if t <= first.resolved_at]
    assert [w.opened_at for w in history.report.emergency] == opened
    end = first.resolved_at
    in_episode = [
        t.called_at - t.issued_at
        for t in sim.truth
        if t.called_at is not None and first.started_at <= t.issued_at < end
    ]
    assert first.actual_max_wait_s == pytest.approx(max(in_episode), abs=0.01)
    assert first.wait_over_target and first.back_under_s is not None
    assert first.ack_s is None  # no acknowledgement stored: shown as "—"
    assert not [p for p in history.report.peaks if p.hall == "h2"]


def test_outage_of_45_minutes_and_the_device_downtime(history: History) -> None:
    """The outage profile's core system is down exactly 45 minutes from 10:30, the alert
    escalated at the half hour; its door counter's 20 minutes offline are the only failure."""
    sim = history.sims["outage"]
    [o] = history.report.outages
    assert (o.hall, o.system, o.state) == ("h1", "core", "down")
    assert o.start == pytest.approx(epoch(sim.profile, hm("10:30")), abs=0.01)
    assert o.duration_s == pytest.approx(45 * 60, abs=0.01)
    assert o.alert_level == 2
    assert o.tickets_issued == sum(
        1 for t in sim.truth if t.leg == 0 and o.start <= t.issued_at < (o.end or 0)
    )
    assert o.callbacks is None and o.notified is None  # no register in this database
    [r] = history.report.ranking
    assert (r.hall, r.device, r.kind, r.failures) == ("h1", "dc-d2", "door_counter", 1)
    assert r.downtime_s == pytest.approx(20 * 60, abs=0.01)
    [down] = history.report.downs
    assert down.start == pytest.approx(epoch(sim.profile, hm("14:00")), abs=0.01)


def test_complaints_and_their_deadlines_across_the_holiday(history: History) -> None:
    """Every complaint event is listed once, with the answer deadline 2 working days on: over
    the National Day holiday and onto the make-up Saturday."""
    rep = history.report
    sent = [
        m.payload for sim in history.sims.values() for m in sim.messages if "complaint" in m.topic
    ]
    assert [c.complaint_id for c in rep.complaints] == [p["complaint_id"] for p in sent]
    due = {c.complaint_id[:10]: c.due for c in rep.complaints}
    assert due == {
        "TS20260930": date(2026, 10, 9),
        "TS20261008": date(2026, 10, 10),
        "TS20261009": date(2026, 10, 12),
    }
    assert all(c.in_time is None and c.escalated is None for c in rep.complaints)
    by_hall = {t.key: t for t in tally(rep.complaints, "hall")}
    assert by_hall["h1"].received == 7 and by_hall["h2"].received == 1
    assert by_hall["h1"].serious == sum(p["severity"] == "serious" for p in sent[:7])
    assert by_hall["h1"].in_time is None  # no workflow records: unknown, not zero


def test_workflow_records_fill_in_answers_callbacks_and_acks(history: History) -> None:
    """With handling records, answers are judged against the deadline, call-backs are
    counted per outage and an acknowledgement gives the time to acknowledge."""
    rep = history.report
    first, second = rep.complaints[0], rep.complaints[-1]
    o = rep.outages[0]
    peak = rep.peaks[0]
    wf = Workflow(
        complaints=[
            ComplaintRecord("h1", first.complaint_id, epoch(history.sims["outage"].profile, 0)),
            ComplaintRecord("h2", second.complaint_id, None, escalated=True, responsible="王五"),
        ],
        callbacks=[
            CallbackRecord("h1", o.start + 1900, o.start + 3000, ("core",)),
            CallbackRecord("h1", o.start + 2000, None, ("core",)),
        ],
        acks=[Ack("h1", "queue_peak", "", peak.started_at + 4, peak.fired_at + 150, "张三")],
    )
    again = build(PERIOD, list(rep.days), rep.settings, workflow=wf)
    c = {x.complaint_id: x for x in again.complaints}
    assert c[first.complaint_id].in_time is True  # answered 8 Oct, due 9 Oct
    assert c[second.complaint_id].in_time is False and c[second.complaint_id].escalated
    assert c[second.complaint_id].responsible == "王五"
    assert (again.outages[0].callbacks, again.outages[0].notified) == (2, 1)
    assert again.peaks[0].ack_s == pytest.approx(150) and again.peaks[0].acked_by == "张三"
    assert rep.peaks[0].acked_at is None  # the replayed days are not changed by a rebuild
    people = {t.key: t for t in tally(again.complaints, "responsible")}
    assert people["王五"].late_or_open == 1 and people["王五"].escalated == 1


async def test_workflow_tables_are_read_when_present(tmp_path: Path) -> None:
    """Acks come from the alert service's saved state; complaint and call-back tables give
    records when they exist and None (shown "—") when they do not."""
    db = tmp_path / "h.db"
    engine = RuleEngine(RuleSettings())
    e = Episode("h1", "queue_peak", "", "firing", 1000.0, acked_by="李四", acked_at=1300.0)
    engine.episodes[("h1", "queue_peak", "")] = e
    async with Outbox(db) as outbox:
        await outbox.save_state("rules", engine.snapshot(), 1300.0)
    conn = report_history.connect(db)
    assert report_history.read_acks(conn) == [Ack("h1", "queue_peak", "", 1000.0, 1300.0, "李四")]
    assert report_history.complaint_rows(conn) is None
    assert report_history.callback_rows(conn) is None
    conn.close()
    rw = sqlite3.connect(db)
    rw.executescript(
        "CREATE TABLE complaints (hall, complaint_id, state, received_at, body);"
        "CREATE TABLE complaint_history (seq INTEGER PRIMARY KEY, hall, complaint_id, at,"
        " action, actor, state, note, data);"
        "CREATE TABLE callbacks (id INTEGER PRIMARY KEY, hall, name, phone, registered_at,"
        " registered_by, systems, note, notified_at);"
    )
    body = json.dumps({"answered_at": 50.0, "assignee": "S001"})
    rw.execute("INSERT INTO complaints VALUES ('h1', 'C1', 'followed_up', 10.0, ?)", (body,))
    rw.execute(
        "INSERT INTO complaint_history VALUES (1,'h1','C1',20,'escalate','x','verified','','{}')"
    )
    rw.execute(
        "INSERT INTO complaint_history VALUES (2,'h1','C1',60,'follow_up','x','followed_up',"
        "'','{}')"
    )
    rw.execute("INSERT INTO callbacks VALUES (1,'h1','n','138',5.0,'x','core','',NULL)")
    rw.commit()
    rw.close()
    conn = report_history.connect(db)
    assert report_history.complaint_rows(conn) == [
        ComplaintRecord("h1", "C1", 50.0, True, 60.0, "S001")
    ]
    assert report_history.callback_rows(conn) == [CallbackRecord("h1", 5.0, None, ("core",))]
    conn.close()


def test_charts_are_valid_svg_with_chinese_labels(history: History) -> None:
    """Every chart parses as SVG, has a title, draws its bars, and escapes its labels."""
    charts = report_charts.charts(history.report)
    assert {"02-peak-episodes", "09-service-by-hour", "12-device-ranking"} <= set(charts)
    for svgs in charts.values():
        for svg in svgs:
            root = ET.fromstring(svg)
            assert root.tag == "{http://www.w3.org/2000/svg}svg"
            assert root.find("{http://www.w3.org/2000/svg}title") is not None
    bars = svgchart.bar_chart(
        ["09时", "10时<&>"], [svgchart.Series("取号", [3, 5])], title="测试", y_label="张"
    )
    root = ET.fromstring(bars)
    rects = root.findall("{http://www.w3.org/2000/svg}rect")
    assert len(rects) == 2 and "10时<&>" in "".join(root.itertext())
    assert svgchart.nice_ticks(0, 47) == [0, 10, 20, 30, 40, 50]


def test_html_and_csv_files(history: History, tmp_path: Path) -> None:
    """The page holds every section heading and no external reference; every table has a
    CSV with the same rows, readable by Excel (UTF-8 with BOM)."""
    paths = report_html.write(history.report, tmp_path)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    for heading in ("高峰期应急处置", "信息系统故障", "投诉处理", "服务情况", "设备运行"):
        assert heading in html
    assert "<script" not in html and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    for t in report_tables.tables(history.report):
        raw = (tmp_path / f"{t.slug}.csv").read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        lines = raw.decode("utf-8-sig").splitlines()
        assert lines[0].split(",")[0] == t.columns[0] and len(lines) == len(t.rows) + 1
    assert len(paths) == 1 + len(report_tables.tables(history.report))


def test_cli_writes_one_hall_with_the_same_figures(history: History, tmp_path: Path) -> None:
    """`hallwatch report --from --to --hall --out` writes the page, CSVs and a zip; a hall on
    its own has exactly its figures of the all-halls report (hall-days replay independently)."""
    parser = argparse.ArgumentParser()
    report_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        [
            *("report", "--from", "2026-10-09", "--to", "2026-10-09", "--hall", "h2"),
            *("--out", str(tmp_path / "out"), "--db", str(history.db), "--zip"),
        ]
    )
    assert args.func(args) == 0
    assert "h2" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    [table] = [t for t in report_tables.tables(history.report) if t.slug == "01-summary"]
    csv_rows = (tmp_path / "out" / "01-summary.csv").read_text(encoding="utf-8-sig").splitlines()
    want = [report_html.csv_text(table).splitlines()[0]]
    want += [line for line in report_html.csv_text(table).splitlines() if line.startswith("h2,")]
    assert csv_rows == want
    with zipfile.ZipFile(tmp_path / "out" / "report.zip") as z:
        assert "01-summary.csv" in z.namelist()
    bad = parser.parse_args(
        [
            *("report", "--from", "2026-10-09", "--to", "2026-10-01", "--out", str(tmp_path)),
            *("--db", str(history.db)),
        ]
    )
    assert bad.func(bad) == 2
    missing = parser.parse_args(
        [
            *("report", "--from", "2026-10-09", "--to", "2026-10-09", "--out", str(tmp_path)),
            *("--db", str(tmp_path / "nope.db")),
        ]
    )
    assert missing.func(missing) == 2


async def test_http_report(history: History) -> None:
    """GET /api/report gives the page (or a zip); bad periods are refused with 400, and a
    token with reports:read is required. (The holiday week: no events, so no replay to wait
    for.)"""
    app = make_app([Token("centre", "s3cret-0123456789", frozenset({"reports:read"}))])
    report_api.add_routes(app, history.db, Settings())
    async with TestClient(TestServer(app)) as client:
        auth = {"Authorization": "Bearer s3cret-0123456789"}
        url = "/api/report?from=2026-10-01&to=2026-10-07&hall=h2"
        assert (await client.get(url)).status == 401
        resp = await client.get(url, headers=auth)
        assert resp.status == 200 and resp.content_type == "text/html"
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        page = await resp.text()
        assert "住房公积金服务大厅运行报告" in page and "本期无记录" in page
        resp = await client.get(url + "&format=zip", headers=auth)
        assert resp.status == 200
        with zipfile.ZipFile(io.BytesIO(await resp.read())) as z:
            assert "report.html" in z.namelist()
        for q in (
            "from=2026-10-09",
            "from=2026-10-09&to=2026-10-01",
            "from=x&to=y",
            "from=2026-01-01&to=2026-12-31",
            "from=2026-10-09&to=2026-10-09&format=pdf",
        ):
            assert (await client.get(f"/api/report?{q}", headers=auth)).status == 400


def test_a_day_past_the_ticket_cap_is_reported() -> None:
    """A hall-day with more tickets than the daily cap (5,200 issued) is replayed for the report
    without error (it raised KeyError 'G5000' and /api/report answered 500): the tickets past
    the cap are left out, as the daemon leaves them out."""
    from hallwatch.daemon.reports.hallday import replay_hall_day
    from hallwatch.daemon.reports.inputs import ReportSettings

    day = date(2026, 9, 30)
    t0 = datetime(2026, 9, 30, 9, 0, tzinfo=ZONE).timestamp()
    messages = []
    for i in range(5200):
        body = {"id": f"tm:{i}", "ts": int((t0 + i) * 1000), "type": "issued"}
        body |= {"ticket": f"G{i:04d}", "service": "提取"}
        messages.append(("hall/h1/ticket", json.dumps(body, ensure_ascii=False).encode()))
    settings = ReportSettings(advice_every_s=3600.0, tick_s=600.0)
    got = replay_hall_day("h1", day, messages, settings)
    assert len(got.visits) == 5000
