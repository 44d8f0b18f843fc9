"""`python -m tests.harness.bench users`: what users of the daemon feel, each figure against a
baseline measured in the same run (issue #14). Prints a table: figure, daemon, baseline, ratio,
target, and whether the target is met.

1. Ingest: `hallwatch run` (default settings, fresh database) and the bare subscriber
   (`bare_sub`: json.loads + count), each alone on a fresh private Mosquitto, fed the same
   QoS 1 publisher of simulated traffic (20 halls). Rate: events over first publish → the
   daemon's stored count on /healthz (checked against hallwatch_events_total at the end), or
   the bare subscriber's count, reaching them all. CPU:
   utime + stime from /proc/PID/stat over the same span, scaled to 20,000 events.
2. Latency publish → estimate: `bench_latency`.
3. Idle: a day of `normal` traffic for N halls (heartbeats kept only when a device's state
   changes), all but its last 20,000 events written to the store first (`bench_state`: 500
   halls' day live would take hours) and replayed at start-up, the rest live over MQTT; then
   the daemon's CPU over `idle_s` with nothing arriving, and its VmRSS; baseline
   the bare subscriber's idle CPU over the same seconds and the daemon's VmRSS once restarted on
   the same database (snapshot and all) and settled.
4. Scrape: 20 GETs of /metrics on the fed daemon of step 3 (median, max, bytes) against 20 of
   /healthz. The idle CPU is measured before, so scrapes do not count in it.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tests.harness.bench import hall_traffic
from tests.harness.bench_latency import run_latency
from tests.harness.bench_procs import (
    TICK,
    BareProc,
    cpu_seconds,
    get_timed,
    processed,
    rss_mib,
    settle,
    start_daemon,
    stop_daemon,
    stored_after,
    wait_processed,
)
from tests.harness.bench_state import write_history
from tests.harness.bench_traffic import encode, merged, publish_steady
from tests.harness.mosquitto import Mosquitto
from tests.harness.procs import DaemonChild

PER = 20_000  # CPU is reported per this many events
LIVE = 20_000  # idle: the last events of the day that arrive live (at most half the day)


@dataclass(frozen=True)
class Row:
    figure: str
    daemon: float
    baseline: float
    base_name: str
    target: str  # "" when the figure has no target
    ok: bool | None = None
    digits: int = 1
    floor: float = 0.0  # the baseline's resolution: below it, the ratio is a lower bound

    @property
    def ratio(self) -> float:
        base = max(self.baseline, self.floor)
        return self.daemon / base if base > 0 else math.inf

    def ratio_text(self) -> str:
        return (">" if self.baseline < self.floor else "") + f"{self.ratio:.2f}"


def note(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


def ingest(work: Path, events: int, halls: int) -> list[Row]:
    """Figure 1: the daemon and the bare subscriber on the same traffic, one after the other."""
    traffic = hall_traffic(events, halls=halls, run="u")
    n = len(traffic)
    figures = {}
    for who in ("daemon", "bare"):
        with Mosquitto(work / f"mq-ingest-{who}") as mq:
            if who == "daemon":
                child = start_daemon(work / "ingest-daemon", mq.url, halls, "ingest")
                try:
                    pid = child.pid
                    assert pid is not None
                    time.sleep(1.0)  # past start-up: restore, first tick
                    cpu0 = cpu_seconds(pid)
                    t0 = publish_steady("127.0.0.1", mq.port, traffic, "bench-pub")
                    # Polled on /healthz (the stored count), not /metrics: a scrape every
                    # 0.2 s was 7 % of the daemon's CPU in this window (py-spy).
                    t1 = wait_processed(child, n, 600, partial(stored_after, child, 0))
                    cpu1 = cpu_seconds(pid)
                    if processed(child) != n:  # every event handled once, none refused
                        note(f"ingest: {processed(child):,} of {n:,} events processed")
                finally:
                    stop_daemon(child)
            else:
                bare = BareProc("127.0.0.1", mq.port, "count", str(n))
                try:
                    cpu0 = cpu_seconds(bare.pid)
                    t0 = publish_steady("127.0.0.1", mq.port, traffic, "bench-pub")
                    t1 = bare.wait_done(600)
                    cpu1 = cpu_seconds(bare.pid)
                finally:
                    bare.close()
        figures[who] = (n / (t1 - t0), (cpu1 - cpu0) * PER / n)
        note(f"ingest {who}: {figures[who][0]:,.0f} ev/s, {figures[who][1]:.2f} CPU s / {PER:,}")
    (d_rate, d_cpu), (b_rate, b_cpu) = figures["daemon"], figures["bare"]
    floor = PER / n / TICK  # one clock tick, scaled: the resolution of /proc/PID/stat
    return [
        Row(f"ingest events/s ({halls} halls, {n:,} ev)", d_rate, b_rate, "bare sub",
            ">= 0.8x bare", d_rate >= 0.8 * b_rate, 0),
        Row(f"ingest CPU s per {PER:,} events", d_cpu, b_cpu, "bare sub",
            "<= 2x bare", d_cpu <= 2 * max(b_cpu, floor), 2, floor),
    ]  # fmt: skip


Timings = list[tuple[float, int]]


def _scrapes(url: str, n: int = 20, budget_s: float = 60) -> Timings:
    """`n` timed GETs of `url`, fewer (at least 3) when they take over `budget_s` in all: a
    saturated daemon took 22 s a scrape at 500 halls."""
    out: Timings = []
    started = time.monotonic()
    while len(out) < n and (len(out) < 3 or time.monotonic() - started < budget_s):
        out.append(get_timed(url))
    if len(out) < n:
        note(f"{url}: only {len(out)} scrapes in {budget_s:.0f} s")
    return out


def _fed_and_restarted(
    child: DaemonChild,
    port: int,
    tail: list[tuple[str, bytes]],
    idle_s: float,
    pause_s: float,
    history: int,
) -> tuple[tuple[float, float], float, float, Timings, Timings, int]:
    """Feed `tail` live (after `history` stored events), then ((daemon, bare) idle CPU %, fed
    RSS, restarted RSS, /metrics and /healthz (seconds, bytes), live events the daemon took)."""
    started = time.monotonic()
    publish_steady("127.0.0.1", port, tail, "bench-feed")
    live = partial(stored_after, child, history)
    try:
        wait_processed(child, len(tail), 600, live)
        settle(child, 300)
    except TimeoutError as err:
        note(f"feed not digested: {err}")
    got = live()
    note(f"fed {got:,} of {len(tail):,} live events in {time.monotonic() - started:.0f} s")
    pid = child.pid
    assert pid is not None
    bare = BareProc("127.0.0.1", port, "count", "0")
    try:
        time.sleep(pause_s)  # the feed's last writes and outputs are done
        d0, b0 = cpu_seconds(pid), cpu_seconds(bare.pid)
        time.sleep(idle_s)
        d1, b1 = cpu_seconds(pid), cpu_seconds(bare.pid)
    finally:
        bare.close()
    fed_rss = rss_mib(pid)
    metrics = _scrapes(child.base + "/metrics")
    health = _scrapes(child.base + "/healthz")
    stop_daemon(child)
    child.start(timeout=600)
    settle(child)
    time.sleep(pause_s)
    assert child.pid is not None
    cpu = ((d1 - d0) / idle_s * 100, (b1 - b0) / idle_s * 100)
    return cpu, fed_rss, rss_mib(child.pid), metrics, health, got


def idle(work: Path, halls: int, idle_s: float, large: bool, pause_s: float = 2.0) -> list[Row]:
    """Figures 3 and 4 at `halls` halls: feed a day, idle CPU, RSS, scrapes, restart RSS.
    `pause_s`: the quiet before the idle window and before reading the restarted RSS."""
    msgs = encode(merged(halls, "normal", thin_heartbeats=True), f"i{halls}")
    n = len(msgs)
    live = min(LIVE, n // 2)
    started = time.monotonic()
    write_history(work / f"idle-{halls}" / "hallwatch.db", msgs[:-live])
    note(f"{halls} halls: stored {n - live:,} events in {time.monotonic() - started:.0f} s")
    with Mosquitto(work / f"mq-idle-{halls}") as mq:
        child = start_daemon(work / f"idle-{halls}", mq.url, halls, f"idle-{halls}", 1800)
        note(f"{halls} halls: daemon replayed them in {time.monotonic() - started:.0f} s")
        try:
            fed = _fed_and_restarted(child, mq.port, msgs[-live:], idle_s, pause_s, n - live)
        finally:
            stop_daemon(child)
    (d_pct, b_pct), fed_rss, restarted_rss, metrics, health, got = fed
    day = f"{n:,} ev" + ("" if got >= live else f", only {got:,} of {live:,} live ones processed")
    floor = 100 / TICK / idle_s
    note(f"{halls} halls: idle CPU {d_pct:.2f} % (bare {b_pct:.2f} %), RSS {fed_rss:.0f} MiB")
    m_ms = [t * 1000 for t, _ in metrics]
    h_ms = [t * 1000 for t, _ in health]
    at = f"@ {halls} halls"
    few = "" if len(m_ms) == 20 else f" ({len(m_ms)} scrapes)"
    return [
        Row(f"idle CPU % of a core {at}", d_pct, b_pct, "bare sub idle",
            "< 5 %" if large else "", d_pct < 5 if large else None, 2, floor),
        Row(f"RSS MiB {at} ({day})", fed_rss, restarted_rss, "after restart",
            "< 150 MiB" if large else "", fed_rss < 150 if large else None, 0),
        Row(f"scrape median ms {at}{few}", statistics.median(m_ms), statistics.median(h_ms),
            "/healthz", "< 100 ms" if large else "",
            statistics.median(m_ms) < 100 if large else None),
        Row(f"scrape max ms {at}", max(m_ms), max(h_ms), "/healthz", "< 100 ms" if large else "",
            max(m_ms) < 100 if large else None),
        Row(f"scrape bytes {at}", metrics[0][1], health[0][1], "/healthz", "", None, 0),
    ]  # fmt: skip


def latency_rows(work: Path, halls: int, quick: bool) -> list[Row]:
    """Figure 2 at 100 ev/s (40 s) then 1,000 ev/s (20 s); --quick: 2 s each."""
    plan = [(100, 2.0), (1000, 2.0)] if quick else [(100, 40.0), (1000, 20.0)]
    rows = []
    for rate, d, b in run_latency(work, halls, plan, grace_s=1.0 if quick else 2.0):
        tag = f"@ {rate} ev/s, {halls} halls"
        note(f"latency {tag}: daemon {d.matched}/{d.issued} estimates, bare {b.matched}/{b.issued}")
        big = rate >= 1000
        rows += [
            Row(f"latency p50 ms {tag}", d.p50, b.p50, "bare sub", ""),
            Row(f"latency p99 ms {tag}", d.p99, b.p99, "bare sub",
                "< 50 ms" if big else "", d.p99 < 50 if big else None),
            Row(f"latency max ms {tag}", d.max, b.max, "bare sub", ""),
            Row(f"estimates matched {tag}", d.matched, d.issued, "tickets issued", "all",
                d.matched == d.issued, 0),
        ]  # fmt: skip
    return rows


def table(rows: list[Row]) -> str:
    head = ("figure", "daemon", "baseline", "ratio", "target", "")
    lines = [head]
    for r in rows:
        verdict = "" if r.ok is None else ("ok" if r.ok else "MISS")
        lines.append(
            (
                r.figure,
                f"{r.daemon:,.{r.digits}f}",
                f"{r.baseline:,.{r.digits}f} {r.base_name}",
                r.ratio_text(),
                r.target,
                verdict,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(
        " | ".join(c.ljust(w) if i in (0, 2, 4) else c.rjust(w) for i, (c, w) in
                   enumerate(zip(line, widths, strict=True))).rstrip()
        for line in lines
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """`... users [--halls-small 50 --halls-large 500 --events 20000 --quick]`."""
    ap = argparse.ArgumentParser(prog="python -m tests.harness.bench users")
    ap.add_argument("--halls-small", type=int, default=50)
    ap.add_argument("--halls-large", type=int, default=500)
    ap.add_argument("--events", type=int, default=PER, help="ingest: events to publish")
    ap.add_argument("--ingest-halls", type=int, default=20)
    ap.add_argument("--latency-halls", type=int, default=100)
    ap.add_argument("--idle-s", type=float, help="idle window (default 30 s, --quick 5 s)")
    ap.add_argument("--quick", action="store_true", help="short windows (a smoke run)")
    args = ap.parse_args(argv)
    idle_s = args.idle_s or (5.0 if args.quick else 30.0)
    load = os.getloadavg()[0]
    started = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="hallwatch-bench-users-") as tmp:
        work = Path(tmp)
        phases: list[tuple[str, Callable[[], list[Row]]]] = [
            ("ingest", lambda: ingest(work, args.events, args.ingest_halls)),
            ("latency", lambda: latency_rows(work, args.latency_halls, args.quick)),
        ]
        pause = 0.5 if args.quick else 2.0
        for halls in (args.halls_small, args.halls_large):
            large = halls == args.halls_large
            phases.append((f"idle {halls}", partial(idle, work, halls, idle_s, large, pause)))
        failed = []
        for name, phase in phases:
            try:  # a phase that fails is reported; the others still give their figures
                rows += phase()
            except Exception as err:
                failed.append(name)
                note(f"phase {name} FAILED: {err!r}")
    print(table(rows))
    if failed:
        print(f"FAILED phases (figures missing): {', '.join(failed)}")
    took = time.monotonic() - started
    print(
        f"(bench users: {took:.0f} s; idle window {idle_s:.0f} s; {os.cpu_count()} CPUs, "
        f"load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end)"
    )
    return 1 if failed else 0
