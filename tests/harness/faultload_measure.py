"""The fault-and-load suite's counting: events stored, lost and duplicated, latencies,
notifications delivered, and the daemon's own per-hall state, into the report."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections import Counter
from pathlib import Path

from tests.harness.alert_fakes import FakeWecom, Hit
from tests.harness.fakes import FakeSmsGateway
from tests.harness.faultload_report import STEADY_MARGIN_S, Report
from tests.harness.faultload_traffic import Planned, Publishers, StoreTail
from tests.harness.procs import DaemonChild


def quantiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (0.0, 0.0, 0.0)
    v = sorted(values)
    return (v[len(v) // 2], v[min(len(v) - 1, int(len(v) * 0.99))], v[-1])


def state_check(daemon: DaemonChild, plan: list[Planned], report: Report) -> None:
    """The daemon's own count of issued tickets per hall against what was published."""
    issued = Counter(
        p.key.split("/", 1)[0]
        for p in plan
        if p.expect == "store" and p.topic.endswith("/ticket") and p.payload.get("type") == "issued"
    )
    m = daemon.metrics()
    report.state_halls = len(issued)
    report.state_halls_match = sum(
        1
        for hall, n in issued.items()
        if m.get(("hallwatch_tickets_today", (("event", "issued"), ("hall", hall)))) == n
    )
    peaks = {
        dict(lab)["hall"]: v
        for (name, lab), v in m.items()
        if name == "hallwatch_hall_headcount_peak"
    }
    report.halls_over_threshold = sum(1 for v in peaks.values() if v >= 20)


def count_events(
    report: Report,
    plan: list[Planned],
    pubs: Publishers,
    tail: StoreTail,
    db: Path,
    fault_windows: list[tuple[float, float]],
    slow_window: tuple[float, float] | None,
) -> None:
    tail.poll()
    con = sqlite3.connect(db)
    try:
        rows, distinct = con.execute("SELECT count(*), count(DISTINCT key) FROM events").fetchone()
        rejects = con.execute("SELECT reason, payload FROM rejects").fetchall()
    finally:
        con.close()
    valid = [i for i, p in enumerate(plan) if p.expect == "store"]
    bad = [p for p in plan if p.expect == "bad_ts"]
    report.published = len(valid)
    report.skewed = sum(1 for i in valid if plan[i].skew_s)
    report.stored = sum(1 for i in valid if plan[i].key in tail.received)
    report.lost = len(valid) - report.stored
    report.duplicated = int(rows) - int(distinct)
    report.far_future = len(bad)
    report.far_future_stored = sum(1 for p in bad if p.key in tail.received)
    bad_ids = {p.payload["id"] for p in bad}
    seen_bad: set[str] = set()
    other = 0
    for reason, payload in rejects:
        try:
            ident = json.loads(payload).get("id")
        except (ValueError, AttributeError):
            ident = None
        if reason == "bad_ts" and ident in bad_ids:
            seen_bad.add(ident)
        else:
            other += 1
    report.far_future_rejected = len(seen_bad)
    report.other_rejects = other
    lat_all, lat_steady, lat_slow = [], [], []
    for i in valid:
        got = tail.received.get(plan[i].key)
        if got is None:
            continue
        sent = pubs.pub_time[i]
        lat = got - sent
        lat_all.append(lat)
        if not any(a - STEADY_MARGIN_S <= sent <= b for a, b in fault_windows):
            lat_steady.append(lat)
        if slow_window is not None and slow_window[0] <= sent <= slow_window[1]:
            lat_slow.append(lat)
    report.latency_all = quantiles(lat_all)
    report.latency_steady = quantiles(lat_steady)
    report.latency_slow_disk = quantiles(lat_slow)


def _wecom_id(h: Hit) -> tuple[str, str, str]:
    """WeCom has no idempotency key: a message is its robot key and its exact content."""
    msgtype = str(h.body.get("msgtype"))
    return ("wecom", h.key, str(h.body.get(msgtype, {}).get("content")))


def count_notifications(
    report: Report, db: Path, wecom: FakeWecom, sms: FakeSmsGateway, t0: float, work: Path
) -> None:
    with open(work / "provider_hits.jsonl", "w", encoding="utf-8") as fh:
        for name, hits in (("wecom", wecom.hits), ("sms", sms.hits)):
            for h in hits:
                row = {"provider": name, **dataclasses.asdict(h), "at_s": round(h.at - t0, 3)}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT key, channel, target, payload FROM alert_outbox").fetchall()
    finally:
        con.close()
    report.notes_due = len(rows)
    report.notes_by_channel = dict(Counter(r[1] for r in rows))
    # WeCom has no idempotency key: a delivery is its robot and its exact content.
    want: Counter[tuple[str, str, str]] = Counter()
    for key, channel, target, payload in rows:
        body = json.loads(payload)
        if channel == "wecom":
            want[("wecom", f"robot-{target}", str(body.get("content")))] += 1
        else:
            want[(channel, key, "")] += 1
    got: Counter[tuple[str, str, str]] = Counter()
    for h in wecom.accepted:
        got[_wecom_id(h)] += 1
    for h in sms.accepted:
        got[("sms", h.key, "")] += 1
    report.notes_delivered = sum(min(n, got[k]) for k, n in want.items())
    report.notes_lost = sum(max(0, n - got[k]) for k, n in want.items())
    report.notes_duplicated = sum(max(0, n - want[k]) for k, n in got.items())
    report.provider_refusals = {
        "wecom": sum(1 for h in wecom.hits if not h.accepted),
        "sms": sum(1 for h in sms.hits if not h.accepted and not h.deduped),
    }
    report.notes_resent_deduped = sum(1 for h in sms.hits if h.deduped)
    kills = [(r.at_s, r.fault) for r in report.recoveries if r.fault.startswith("kill")]

    def explain(what: str, times: list[float]) -> str:
        between = [f for at, f in kills if times[0] <= at <= times[-1]]
        shown = ", ".join(f"{t:.1f} s" for t in times)
        return f"{what} at {shown}" + (f" ({', '.join(between)} in between)" if between else "")

    for k, n in got.items():
        if n > want[k]:
            times = sorted(h.at - t0 for h in wecom.accepted if _wecom_id(h) == k)
            report.note_repeats.append(explain(f"SHOWN TWICE: wecom {k[1]}", times))
    for h in sms.hits:
        if h.deduped:
            same = [x.at - t0 for x in sms.hits if x.key == h.key and (x.accepted or x.deduped)]
            report.note_repeats.append(explain(f"deduped: sms {h.key}", sorted(same)))
    firing = {key.split(":", 1)[0] for key, *_ in rows if ":queue_peak:" in key}
    report.halls_alerted = len(firing)
