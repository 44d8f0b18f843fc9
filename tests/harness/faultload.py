"""`python -m tests.harness.faultload`: the daemon under a multiple of a busy province's load,
with faults.

One run, all real processes on this machine: a private Mosquitto with persistence, the daemon
(`hallwatch run`, `store.synchronous = FULL`) as a child, local WeCom-robot and SMS-gateway
servers (tests/harness/fakes.py), and QoS 1 publishers (paho, waiting for every PUBACK) replaying
simulated peak days of `halls` halls at `speed` times real time, event times set to the moment
of publishing. Into that run it injects:

- `kill -9` of the daemon `kills` times, restarted at once (as systemd's Restart= would);
- `broker_restarts` Mosquitto restarts (SIGTERM, then start on the same port and files);
- the WeCom robot failing (HTTP 500, then errcode 45009) and the SMS gateway failing (HTTP 503)
  for a while each, then recovering;
- a slow disk: the daemon's processes are put in a cgroup-v1 blkio group whose write IOPS on the
  database's block device are capped (`blkio.throttle.write_iops_device`) for a while, so every
  `fsync` of a commit really waits (needs root and cgroup v1 blkio; reported when missing);
- clock skew: some device timestamps a few seconds ahead or behind (must be stored), and a few
  hours or a day ahead (must be rejected as `bad_ts`: counted on their own line, not as loss);
- after the load phase, a full disk: a second daemon with its database on a 2 MiB tmpfs takes
  more events than fit; it must stop with a clear error, leave an intact database, and, once
  the tmpfs is enlarged and the daemon restarted, store every event exactly once: nothing it
  could not store was acknowledged to the broker.

What is measured, and how:
- events: `published` is what the publishers handed to paho (every one later PUBACKed);
  `stored` counts distinct (hall, id) keys of the run in the event table; `duplicated` is rows
  beyond distinct keys; `lost` is published-and-valid minus stored.
- notifications: `due` is every row of the outbox; `delivered` are rows a fake provider
  accepted (SMS by Idempotency-Key; WeCom, which has no such key, by robot and content);
  `duplicated` are deliveries a recipient sees twice (a second accepted delivery of a row);
  `lost` are rows never accepted. The outbox sends at least once: a kill -9 between the
  provider's answer and the outbox commit sends the row again after the restart. The SMS
  gateway dedupes that by its Idempotency-Key (counted on a line of its own); a WeCom robot
  cannot, so there such a resend is a duplicate.
- latency: the daemon's `received` column (its clock when it took the batch off the socket,
  before the commit, after which the state applies the batch at once) minus the publisher's
  clock just before `publish()`; same host, same clock. It includes broker queueing and
  outages, so its tail shows the faults; a second line leaves out events published within
  5 s before or during a fault.
- memory: VmHWM of every daemon process, the largest.
- recovery: from the fault (SIGKILL, broker SIGTERM) to the daemon healthy and every valid
  event published before the fault stored.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.harness.alert_fakes import FakeWecom
from tests.harness.fakes import FakeSmsGateway, ServerThread
from tests.harness.faultload_faults import (
    SLOW_IOPS,
    SlowDisk,
    disk_full_phase,
    fault_order,
    fault_slots,
    start_timer,
)
from tests.harness.faultload_measure import count_events, count_notifications, state_check
from tests.harness.faultload_report import Recovery, Report
from tests.harness.faultload_traffic import Publishers, StoreTail, plan_traffic
from tests.harness.mosquitto import Mosquitto
from tests.harness.procs import DaemonChild, wait_for

__all__ = ["Report", "alert_config", "main", "run_faultload"]


def alert_config(path: Path, halls: int, wecom: str, sms: str, db: Path) -> None:
    """Peak alerts that fire within seconds, all day, through WeCom (a robot per hall) and SMS."""
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    lines = [
        "[store]",
        f'path = "{db}"',
        'synchronous = "FULL"',
        "[calendar]",
        f'workdays = ["{today}"]',
        "[alerts]",
        'open = "00:00"',
        'close = "23:59"',
        "[alerts.queue_peak]",
        "for_s = 5",
        "clear_for_s = 10",
        "escalate_after_s = 60",
        "repeat_s = 30",
        "[alerts.outbox]",
        "retry_base_s = 1.0",
        "retry_cap_s = 8.0",
        "[alerts.wecom]",
        f'url = "{wecom}/cgi-bin/webhook/send"',
        "throttle_pause_s = 5.0",
        "[alerts.sms]",
        'provider = "generic"',
        f'endpoint = "{sms}/sms"',
        "[alerts.roles.director]",
        'sms = ["13900000000"]',
    ]
    for i in range(halls):
        hall = f"h{i:02d}"
        lines += [f"[alerts.wecom.robots.{hall}]", f'key = "robot-{hall}"']
        lines += [
            f"[alerts.halls.{hall}.roles.supervisor]",
            f'wecom = ["{hall}"]',
            f'sms = ["138{i:08d}"]',
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class _Run:
    """One run: its processes and fake providers, the plan, and what it has measured so far."""

    def __init__(
        self,
        work: Path,
        *,
        halls: int,
        speed: float,
        duration_s: float,
        seed: int,
        slow_disk: bool,
        log: Callable[[str], None],
    ) -> None:
        self.work = work
        self.duration_s = duration_s
        self.log = log
        self.run = run = f"r{seed}-{int(time.time())}"
        self.report = Report(halls=halls, speed=speed, duration_s=duration_s, workdir=str(work))
        self.plan, self.report.province_rate_per_s = plan_traffic(
            halls, speed, duration_s, seed, run
        )
        log(f"planned {len(self.plan)} events for {halls} halls over {duration_s:.0f} s")
        self.wecom, self.sms = FakeWecom(), FakeSmsGateway()
        self.servers = ServerThread(self.wecom.app(), self.sms.app())
        wecom_url, sms_url = self.servers.start()
        self.broker = Mosquitto(work / "mosquitto")
        self.broker.start()
        self.db = work / "hallwatch.db"
        cfg = work / "hallwatch.toml"
        alert_config(cfg, halls, wecom_url, sms_url, self.db)
        self.disk = SlowDisk(work) if slow_disk else None
        self.daemon = DaemonChild(
            work,
            self.broker.url,
            db=self.db,
            config=cfg,
            client_id=f"hallwatch-{run}",
            on_start=self.disk.add if self.disk is not None else None,
        )
        self.tail = StoreTail(self.db)
        self.pubs: Publishers | None = None
        self.dup_by_start: dict[int, float] = {}
        self.monitor_stop = threading.Event()
        self.fault_windows: list[tuple[float, float]] = []
        self.slow_window: tuple[float, float] | None = None
        self.t0 = 0.0
        self.mon = threading.Thread(target=self._monitor, name="monitor", daemon=True)

    def _monitor(self) -> None:
        daemon = self.daemon
        while not self.monitor_stop.wait(0.5):
            daemon.note_memory()
            with suppress(Exception):
                v = daemon.sample("hallwatch_events_total", result="duplicate")
                if v is not None:
                    self.dup_by_start[daemon.starts] = v

    def start(self) -> Publishers:
        """The daemon up with its subscriptions, then the publishers started."""
        self.daemon.start()
        self.mon.start()
        self.pubs = pubs = Publishers(self.broker.port, self.plan, self.run)
        self.t0 = time.time() + 0.5
        # The daemon's session must hold its subscriptions before the first event.
        wait_for(lambda: self.daemon.health().get("mqtt_connected"), 10, "the daemon's session")
        time.sleep(0.5)
        pubs.start(self.t0)
        return pubs

    def stored_through(self, cut: int) -> Callable[[], bool]:
        """A check: every valid event of plan[:cut] is in the store."""
        missing = {p.key for p in self.plan[:cut] if p.expect == "store"}

        def check() -> bool:
            self.tail.poll()
            missing.difference_update([k for k in list(missing) if k in self.tail.received])
            return not missing

        return check

    def fault(self, kind: str, n: int) -> None:
        """A kill -9 (restarted at once) or a broker restart; records the recovery."""
        cut = self.pubs.sent if self.pubs is not None else 0
        at = time.time()
        if kind == "kill":
            self.daemon.kill9()
            self.daemon.start(wait_connected=False)
        else:
            self.broker.restart()
        healthy = wait_for(self.daemon.healthy, 60, f"the daemon after {kind} {n}")
        caught = wait_for(self.stored_through(cut), 120, f"catch-up after {kind} {n}", every=0.1)
        label = f"kill -9 #{n}" if kind == "kill" else f"broker restart #{n}"
        rec = Recovery(label, at - self.t0, healthy, max(healthy, caught))
        self.report.recoveries.append(rec)
        self.fault_windows.append((at, at + rec.caught_up_s))
        self.log(f"{label}: healthy {rec.healthy_s:.2f} s, caught up {rec.caught_up_s:.2f} s")

    def _set_wecom(self, mode: str | None) -> Callable[[], None]:
        def act() -> None:
            self.wecom.fail = mode
            self.log(f"wecom: {mode or 'recovered'}")

        return act

    def _set_sms(self, mode: str | None) -> Callable[[], None]:
        def act() -> None:
            self.sms.fail = mode
            self.log(f"sms: {mode or 'recovered'}")

        return act

    def _set_disk(self, iops: int) -> Callable[[], None]:
        def act() -> None:
            assert self.disk is not None
            self.disk.set_iops(iops)
            self.log(f"slow disk: {'write IOPS capped at ' + str(iops) if iops else 'off'}")

        return act

    def windows(self) -> list[tuple[float, Callable[[], None]]]:
        """The providers' failing windows and the slow disk's: when to switch what."""
        t0, d, disk = self.t0, self.duration_s, self.disk
        windows = [
            (t0 + 0.30 * d, self._set_wecom("http500")),
            (t0 + 0.42 * d, self._set_wecom("45009")),
            (t0 + 0.55 * d, self._set_wecom(None)),
            (t0 + 0.35 * d, self._set_sms("http503")),
            (t0 + 0.60 * d, self._set_sms(None)),
        ]
        self.fault_windows += [(t0 + 0.30 * d, t0 + 0.55 * d), (t0 + 0.35 * d, t0 + 0.60 * d)]
        if disk is not None and disk.available:
            slow = self.slow_window = (t0 + 0.62 * d, t0 + 0.85 * d)
            windows += [(slow[0], self._set_disk(SLOW_IOPS)), (slow[1], self._set_disk(0))]
            self.fault_windows.append(slow)
            self.report.slow_disk = (
                f"write IOPS on block device {disk.device} capped at {SLOW_IOPS}/s for"
                f" {slow[1] - slow[0]:.0f} s (cgroup blkio throttle, FULL sync)"
            )
        elif disk is not None:
            self.report.slow_disk = disk.why_not
        return windows

    def load(self, pubs: Publishers, kills: int, broker_restarts: int) -> float:
        """The load phase with its faults; returns when the last event was handed to paho."""
        kinds = fault_order(kills, broker_restarts)
        slots = fault_slots(len(kinds), self.duration_s)
        timers = [start_timer(at, act) for at, act in self.windows()]
        try:
            for (kind, n), at in zip(kinds, slots, strict=True):
                wait = self.t0 + at - time.time()
                if wait > 0:
                    time.sleep(wait)
                self.fault(kind, n)
            pubs.join(self.duration_s + 120)
        finally:
            for t in timers:
                t.cancel()
            self.wecom.fail = self.sms.fail = None
            if self.disk is not None:
                self.disk.set_iops(0)
        return time.time()

    def finish(self, pubs: Publishers, publish_end: float, disk_full: bool) -> None:
        """Everything acknowledged, stored and sent; then counted into the report."""
        report, daemon, log = self.report, self.daemon, self.log
        pubs.wait_acked(120)
        log("every event acknowledged by the broker")
        wait_for(self.stored_through(len(self.plan)), 180, "every event stored", every=0.2)
        log("every valid event stored")
        time.sleep(8.0)  # a hall that crossed the threshold last gets its 5 s and a tick
        state_check(daemon, self.plan, report)
        _drain_notifications(daemon, self.db, log)
        self.monitor_stop.set()
        self.mon.join(5)
        daemon.stop()
        report.rate_per_s = len(self.plan) / max(1e-9, publish_end - self.t0)
        count_events(
            report, self.plan, pubs, self.tail, self.db, self.fault_windows, self.slow_window
        )
        count_notifications(report, self.db, self.wecom, self.sms, self.t0, self.work)
        report.redelivered_dropped = int(sum(self.dup_by_start.values()))
        if disk_full:
            report.disk_full = disk_full_phase(self.work, self.broker, self.run, log)
        report.peak_rss_mib = daemon.peak_rss_kib / 1024
        report.daemon_processes = daemon.starts

    def close(self) -> None:
        """Every process, thread and server of the run stopped; the cgroup removed."""
        self.monitor_stop.set()
        if self.pubs is not None:
            self.pubs.close()
        self.tail.close()
        if self.daemon.exited() is None and self.daemon.proc is not None:
            self.daemon.kill9()
        self.broker.stop()
        self.servers.stop()
        if self.disk is not None:
            self.disk.close()


def run_faultload(
    *,
    halls: int = 20,
    speed: float = 60.0,
    duration_s: float = 150.0,
    kills: int = 3,
    broker_restarts: int = 2,
    seed: int = 1,
    out: Path | None = None,
    disk_full: bool = True,
    slow_disk: bool = True,
    log: Callable[[str], None] = lambda s: None,
) -> Report:
    """Run the suite; returns the report (`report.render()` prints it). Work files go to `out`
    (kept), else to a temporary directory removed afterwards unless the run failed."""
    started = time.monotonic()
    work = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="hallwatch-faultload-"))
    work.mkdir(parents=True, exist_ok=True)
    run = _Run(
        work,
        halls=halls,
        speed=speed,
        duration_s=duration_s,
        seed=seed,
        slow_disk=slow_disk,
        log=log,
    )
    report = run.report
    try:
        pubs = run.start()
        publish_end = run.load(pubs, kills, broker_restarts)
        run.finish(pubs, publish_end, disk_full)
    finally:
        run.close()
        report.wall_s = time.monotonic() - started
    if out is None and report.ok:
        shutil.rmtree(work, ignore_errors=True)
    (work.exists() and (work / "report.txt").write_text(report.render() + "\n", encoding="utf-8"))
    return report


def _pending(db: Path) -> int:
    con = sqlite3.connect(db, timeout=5)
    try:
        return int(
            con.execute("SELECT count(*) FROM alert_outbox WHERE state = 'pending'").fetchone()[0]
        )
    finally:
        con.close()


def _drain_notifications(daemon: DaemonChild, db: Path, log: Callable[[str], None]) -> None:
    """Let the outbox empty, then stop the daemon; anything queued meanwhile is sent by a
    short restart (a row left pending is not lost, but the run should account for all)."""
    for _ in range(4):
        wait_for(lambda: _pending(db) == 0, 120, "the outbox to drain", every=0.5)
        code = daemon.stop()
        if code != 0:
            raise RuntimeError(f"daemon exited {code} on SIGTERM; log: {daemon.log}")
        if _pending(db) == 0:
            log("outbox drained")
            return
        daemon.start()
    raise RuntimeError("the outbox kept refilling")


# --- the command --------------------------------------------------------------------------------


def cmd_faultload(args: argparse.Namespace) -> int:
    report = run_faultload(
        halls=args.halls,
        speed=args.speed,
        duration_s=args.duration,
        kills=args.kills,
        broker_restarts=args.broker_restarts,
        seed=args.seed,
        out=Path(args.out) if args.out else None,
        disk_full=not args.no_disk_full,
        slow_disk=not args.no_slow_disk,
        log=lambda s: print(f"[{time.strftime('%H:%M:%S')}] {s}", flush=True),
    )
    print(report.render())
    if args.json:
        Path(args.json).write_text(
            json.dumps(dataclasses.asdict(report), indent=2, ensure_ascii=False), encoding="utf-8"
        )
    return 0 if report.ok else 1


def _arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--halls", type=int, default=20, help="simulated halls (default 20)")
    p.add_argument("--speed", type=float, default=60.0, help="x real time (default 60)")
    p.add_argument("--duration", type=float, default=150.0, help="seconds of load (default 150)")
    p.add_argument("--kills", type=int, default=3, help="kill -9 of the daemon (default 3)")
    p.add_argument("--broker-restarts", type=int, default=2, help="Mosquitto restarts (default 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", help="keep work files (DBs, logs, report.txt) in this directory")
    p.add_argument("--json", help="also write the report as JSON to this file")
    p.add_argument("--no-disk-full", action="store_true", help="skip the full-disk phase")
    p.add_argument("--no-slow-disk", action="store_true", help="skip the slow-disk window")
    p.set_defaults(func=cmd_faultload)
    return p


def main() -> int:
    """`python -m tests.harness.faultload [options]`."""
    args = _arguments(
        argparse.ArgumentParser(prog="python -m tests.harness.faultload")
    ).parse_args()
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
