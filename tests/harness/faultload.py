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
import os
import random
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.harness.fakes import FakeSmsGateway, FakeWecom, Hit, ServerThread
from tests.harness.mosquitto import Mosquitto
from tests.harness.procs import DaemonChild, wait_for

PROVINCE_HALLS = 100  # a busy province: ~20 cities' fund centres with about five halls each
SKEW_SHARE = 0.05  # events whose device clock is a few seconds off
SKEW_MAX_S = 5.0
SLOW_IOPS = 25  # write IOs per second on the DB's device during the slow-disk window
STEADY_MARGIN_S = 5.0


# --- the report ---------------------------------------------------------------------------------


@dataclass
class Recovery:
    fault: str
    at_s: float  # seconds into the run
    healthy_s: float
    caught_up_s: float


@dataclass
class Report:
    halls: int
    speed: float
    duration_s: float
    rate_per_s: float = 0.0
    province_rate_per_s: float = 0.0
    published: int = 0
    stored: int = 0
    duplicated: int = 0
    lost: int = 0
    skewed: int = 0
    far_future: int = 0
    far_future_rejected: int = 0
    far_future_stored: int = 0
    other_rejects: int = 0
    redelivered_dropped: int = 0
    notes_due: int = 0
    notes_delivered: int = 0
    notes_duplicated: int = 0
    notes_lost: int = 0
    notes_by_channel: dict[str, int] = field(default_factory=dict)
    provider_refusals: dict[str, int] = field(default_factory=dict)
    notes_resent_deduped: int = 0  # sent again, answered "duplicate" by the gateway's key
    note_repeats: list[str] = field(default_factory=list)  # what was sent more than once
    halls_over_threshold: int = 0
    halls_alerted: int = 0
    state_halls_match: int = 0
    state_halls: int = 0
    latency_all: tuple[float, float, float] = (0.0, 0.0, 0.0)  # p50, p99, max
    latency_steady: tuple[float, float, float] = (0.0, 0.0, 0.0)
    latency_slow_disk: tuple[float, float, float] = (0.0, 0.0, 0.0)
    peak_rss_mib: float = 0.0
    daemon_processes: int = 0
    recoveries: list[Recovery] = field(default_factory=list)
    slow_disk: str = "not run"
    disk_full: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    workdir: str = ""

    @property
    def ok(self) -> bool:
        """Zero lost and duplicated in both columns, bad clocks rejected, the disk-full checks."""
        full_ok = not self.disk_full or bool(self.disk_full.get("ok"))
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.notes_lost == 0
            and self.notes_duplicated == 0
            and self.far_future_rejected == self.far_future
            and self.far_future_stored == 0
            and self.state_halls_match == self.state_halls
            and full_ok
        )

    def render(self) -> str:
        def ms(t: tuple[float, float, float]) -> str:
            return f"p50 {t[0] * 1000:.0f} ms, p99 {t[1] * 1000:.0f} ms, max {t[2] * 1000:.0f} ms"

        multiple = self.rate_per_s / self.province_rate_per_s if self.province_rate_per_s else 0
        findings: list[str] = []
        lines = [
            "hallwatch fault-and-load report",
            f"load: {self.halls} halls x {self.speed:g} real time for {self.duration_s:.0f} s:"
            f" {self.rate_per_s:.0f} events/s = {multiple:.1f}x a busy province"
            f" ({PROVINCE_HALLS} halls on a peak day: {self.province_rate_per_s:.0f} events/s)",
            "",
            f"{'':24}{'published/due':>14}{'stored/delivered':>18}{'duplicated':>12}{'lost':>6}",
            f"{'events':24}{self.published:>14}{self.stored:>18}{self.duplicated:>12}"
            f"{self.lost:>6}",
            f"{'notifications':24}{self.notes_due:>14}{self.notes_delivered:>18}"
            f"{self.notes_duplicated:>12}{self.notes_lost:>6}",
            "",
            f"events with device clock a few seconds off (stored): {self.skewed}",
            f"events stamped hours/a day ahead: {self.far_future} published,"
            f" {self.far_future_rejected} rejected as bad_ts, {self.far_future_stored} stored",
            f"other rejections: {self.other_rejects}; redeliveries dropped by id:"
            f" {self.redelivered_dropped}",
            f"state check: issued tickets per hall equal to published in"
            f" {self.state_halls_match}/{self.state_halls} halls",
            "notifications by channel: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.notes_by_channel.items())),
            "provider refusals while failing (retried): "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.provider_refusals.items())),
            "sent again after a kill -9 and dropped by the SMS gateway's Idempotency-Key:"
            f" {self.notes_resent_deduped}",
            *("  " + r for r in self.note_repeats),
            f"queue_peak (20 people held for 5 s): {self.halls_over_threshold} halls reached"
            f" 20 people, {self.halls_alerted} alerted",
            "",
            f"latency publish -> stored+applied, all events: {ms(self.latency_all)}",
            f"  outside faults (none within {STEADY_MARGIN_S:g} s): {ms(self.latency_steady)}",
            f"  during the slow disk: {ms(self.latency_slow_disk)}",
            f"daemon peak memory (VmHWM, largest of {self.daemon_processes} processes):"
            f" {self.peak_rss_mib:.0f} MiB",
            f"slow disk: {self.slow_disk}",
            "recovery (fault -> healthy / every event published before it stored):",
        ]
        for r in self.recoveries:
            lines.append(
                f"  {r.fault:<16} at {r.at_s:6.1f} s: healthy {r.healthy_s:5.2f} s,"
                f" caught up {r.caught_up_s:5.2f} s"
            )
        if self.disk_full:
            lines.append("disk full: " + str(self.disk_full.get("summary", "")))
            if self.disk_full.get("names_path") is False:
                findings.append(
                    "disk full: the daemon's error does not name the database path (see above)"
                )
            for line in self.disk_full.get("lines", []):
                lines.append("  " + line)
        if findings:
            lines += ["", "findings (not counted in the result):"] + ["  " + f for f in findings]
        lines += [
            "",
            f"result: {'PASS' if self.ok else 'FAIL'}"
            f" (run took {self.wall_s:.0f} s; files in {self.workdir})",
        ]
        return "\n".join(lines)


# --- traffic ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Planned:
    offset_s: float  # when to publish, seconds after the start
    topic: str
    payload: dict[str, Any]
    retain: bool
    key: str  # hall/id: the daemon's idempotency key
    skew_s: float = 0.0
    expect: str = "store"  # store | bad_ts
    gateway: int = 0


def plan_traffic(
    halls: int, speed: float, duration_s: float, seed: int, run: str, gateways: int = 4
) -> tuple[list[Planned], float]:
    """Simulated peak days of `halls` halls paced at `speed`, cut at `duration_s`; returns the
    plan sorted by offset and the busy-province rate (events/s) at real time."""
    from hallwatch.sensors.profiles import PROFILES
    from hallwatch.sensors.simulator import simulate_day

    rand = random.Random(seed)
    plan: list[Planned] = []
    per_hall_rate = 0.0
    for i in range(halls):
        hall = f"h{i:02d}"
        profile = dataclasses.replace(PROFILES["peak"], hall=hall)
        day = simulate_day(profile, seed=seed + i)
        start = day.messages[0].at
        span = day.messages[-1].at - start
        per_hall_rate = max(per_hall_rate, len(day.messages) / span)
        stagger = i * 1.0
        for m in day.messages:
            offset = (m.at - start) / speed + stagger
            if offset >= duration_s:
                break
            ident = f"{m.payload['id']}@{run}"
            skew = 0.0
            if rand.random() < SKEW_SHARE:
                skew = rand.choice((-1, 1)) * rand.uniform(0.5, SKEW_MAX_S)
            plan.append(
                Planned(offset, m.topic, {**m.payload, "id": ident}, m.retain, f"{hall}/{ident}")
            )
            plan[-1].skew_s = skew
            plan[-1].gateway = i % gateways
        # A device whose clock is far ahead: a few of its events, which must be refused.
        for j in range(3):
            ident = f"bad-clock:{hall}:{j}@{run}"
            payload = {"id": ident, "state": "online", "kind": "other"}
            at = duration_s * (j + 1) / 4
            ahead = (3600.0, 6 * 3600.0, 86400.0)[j]
            plan.append(
                Planned(
                    at,
                    f"hall/{hall}/device/bad-clock",
                    payload,
                    False,
                    f"{hall}/{ident}",
                    ahead,
                    "bad_ts",
                    i % gateways,
                )
            )
    plan.sort(key=lambda p: p.offset_s)
    return plan, per_hall_rate * PROVINCE_HALLS


class Publishers:
    """QoS 1 gateways (one paho client each, persistent session), driven from one thread."""

    def __init__(self, port: int, plan: list[Planned], run: str, gateways: int = 4) -> None:
        self.plan = plan
        self.sent = 0  # plan[:sent] have been handed to paho
        self.pub_time: list[float] = [0.0] * len(plan)
        self.infos: list[mqtt.MQTTMessageInfo] = []
        self.t0 = 0.0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self.clients = []
        for g in range(gateways):
            c = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=f"faultload-gw{g}-{run}", clean_session=False
            )
            c.max_inflight_messages_set(200)
            c.max_queued_messages_set(0)
            c.reconnect_delay_set(0.1, 1)  # type: ignore[arg-type]  # paho takes seconds as float
            c.connect("127.0.0.1", port, keepalive=30)
            c.loop_start()
            self.clients.append(c)
        self.thread = threading.Thread(target=self._run, name="publishers", daemon=True)

    def start(self, t0: float) -> None:
        self.t0 = t0
        self.thread.start()

    def _run(self) -> None:
        try:
            for i, p in enumerate(self.plan):
                if self._stop.is_set():
                    return
                due = self.t0 + p.offset_s
                wait = due - time.time()
                if wait > 0:
                    time.sleep(wait)
                body = {**p.payload, "ts": int((due + p.skew_s) * 1000)}
                data = json.dumps(body, ensure_ascii=False).encode()
                self.pub_time[i] = time.time()
                self.infos.append(
                    self.clients[p.gateway].publish(p.topic, data, qos=1, retain=p.retain)
                )
                self.sent = i + 1
        except BaseException as err:
            self.error = err

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TimeoutError("publishers did not finish their plan")
        if self.error is not None:
            raise RuntimeError(f"publisher failed: {self.error!r}")

    def wait_acked(self, timeout: float) -> None:
        wait_for(lambda: all(map(_acked, self.infos)), timeout, "every PUBACK", every=0.2)

    def close(self) -> None:
        self._stop.set()
        for c in self.clients:
            with suppress(Exception):
                c.disconnect()
            c.loop_stop()


def _acked(info: mqtt.MQTTMessageInfo) -> bool:
    """PUBACK received. Not `is_published()`: a message published while the broker was away
    keeps rc NO_CONN although paho queued it and sends it after reconnecting."""
    if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
        raise RuntimeError("paho refused a message: its queue is full")
    return bool(info._published)


class StoreTail:
    """Follows the daemon's event table from another connection (WAL: readers never block)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.last_seq = 0
        self.rows = 0
        self.received: dict[str, float] = {}
        self._con: sqlite3.Connection | None = None

    def poll(self) -> None:
        if self._con is None:
            if not self.db.exists():
                return
            self._con = sqlite3.connect(self.db, timeout=5)
            self._con.execute("PRAGMA query_only=1")
        rows = self._con.execute(
            "SELECT seq, key, received FROM events WHERE seq > ? ORDER BY seq", (self.last_seq,)
        ).fetchall()
        for seq, key, received in rows:
            self.rows += 1
            self.received.setdefault(key, received)
            self.last_seq = seq

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


# --- the slow disk ------------------------------------------------------------------------------


class SlowDisk:
    """A cgroup-v1 blkio group capping write IOPS on the block device holding `path`."""

    ROOT = Path("/sys/fs/cgroup/blkio")

    def __init__(self, path: Path) -> None:
        self.group = self.ROOT / f"hallwatch-faultload-{os.getpid()}"
        self.device = ""
        self.why_not = ""
        try:
            st = os.stat(path)
            dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
            sysdev = Path(f"/sys/dev/block/{dev}")
            if (sysdev / "partition").exists():  # throttle the whole disk, not the partition
                dev = (sysdev.resolve().parent / "dev").read_text().strip()
            if not sysdev.exists():
                raise OSError(f"{path} is not on a block device ({dev})")
            self.group.mkdir(exist_ok=True)
            (self.group / "blkio.throttle.write_iops_device").write_text(f"{dev} 0\n")
            self.device = dev
        except OSError as err:
            self.why_not = f"not injected: {err} (needs root and cgroup v1 blkio)"

    @property
    def available(self) -> bool:
        return bool(self.device)

    def add(self, pid: int) -> None:
        if self.available:
            with suppress(OSError):  # the process may already be gone
                (self.group / "cgroup.procs").write_text(f"{pid}\n")

    def set_iops(self, iops: int) -> None:
        if self.available:
            (self.group / "blkio.throttle.write_iops_device").write_text(f"{self.device} {iops}\n")

    def close(self) -> None:
        if not self.available:
            return
        with suppress(OSError):
            self.set_iops(0)
            for pid in (self.group / "cgroup.procs").read_text().split():
                with suppress(OSError):
                    (self.ROOT / "cgroup.procs").write_text(pid + "\n")
            self.group.rmdir()


# --- the run ------------------------------------------------------------------------------------


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


def _quantiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (0.0, 0.0, 0.0)
    v = sorted(values)
    return (v[len(v) // 2], v[min(len(v) - 1, int(len(v) * 0.99))], v[-1])


def _timer(at: float, action: Callable[[], None]) -> threading.Timer:
    t = threading.Timer(max(0.0, at - time.time()), action)
    t.daemon = True
    t.start()
    return t


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
    run = f"r{seed}-{int(time.time())}"
    report = Report(halls=halls, speed=speed, duration_s=duration_s, workdir=str(work))
    plan, report.province_rate_per_s = plan_traffic(halls, speed, duration_s, seed, run)
    log(f"planned {len(plan)} events for {halls} halls over {duration_s:.0f} s")

    wecom, sms = FakeWecom(), FakeSmsGateway()
    servers = ServerThread(wecom.app(), sms.app())
    wecom_url, sms_url = servers.start()
    broker = Mosquitto(work / "mosquitto")
    broker.start()
    db = work / "hallwatch.db"
    cfg = work / "hallwatch.toml"
    alert_config(cfg, halls, wecom_url, sms_url, db)
    disk = SlowDisk(work) if slow_disk else None
    daemon = DaemonChild(
        work,
        broker.url,
        db=db,
        config=cfg,
        client_id=f"hallwatch-{run}",
        on_start=disk.add if disk is not None else None,
    )
    tail = StoreTail(db)
    pubs: Publishers | None = None
    dup_by_start: dict[int, float] = {}
    monitor_stop = threading.Event()
    fault_windows: list[tuple[float, float]] = []
    slow_window: tuple[float, float] | None = None

    def monitor() -> None:
        while not monitor_stop.wait(0.5):
            daemon.note_memory()
            with suppress(Exception):
                v = daemon.sample("hallwatch_events_total", result="duplicate")
                if v is not None:
                    dup_by_start[daemon.starts] = v

    mon = threading.Thread(target=monitor, name="monitor", daemon=True)
    try:
        daemon.start()
        mon.start()
        pubs = Publishers(broker.port, plan, run)
        t0 = time.time() + 0.5
        # The daemon's session must hold its subscriptions before the first event.
        wait_for(lambda: daemon.health().get("mqtt_connected"), 10, "the daemon's session")
        time.sleep(0.5)
        pubs.start(t0)

        def stored_through(cut: int) -> Callable[[], bool]:
            missing = {p.key for p in plan[:cut] if p.expect == "store"}

            def check() -> bool:
                tail.poll()
                missing.difference_update([k for k in list(missing) if k in tail.received])
                return not missing

            return check

        def fault(kind: str, n: int) -> None:
            cut = pubs.sent if pubs is not None else 0
            at = time.time()
            if kind == "kill":
                daemon.kill9()
                daemon.start(wait_connected=False)
            else:
                broker.restart()
            healthy = wait_for(daemon.healthy, 60, f"the daemon after {kind} {n}")
            caught = wait_for(stored_through(cut), 120, f"catch-up after {kind} {n}", every=0.1)
            label = f"kill -9 #{n}" if kind == "kill" else f"broker restart #{n}"
            rec = Recovery(label, at - t0, healthy, max(healthy, caught))
            report.recoveries.append(rec)
            fault_windows.append((at, at + rec.caught_up_s))
            log(f"{label}: healthy {rec.healthy_s:.2f} s, caught up {rec.caught_up_s:.2f} s")

        kinds = []
        k = b = 0
        while k < kills or b < broker_restarts:
            if k < kills and (k <= b or b >= broker_restarts):
                k += 1
                kinds.append(("kill", k))
            else:
                b += 1
                kinds.append(("broker", b))
        slots = [
            0.2 * duration_s + i * (0.6 * duration_s / max(1, len(kinds) - 1))
            for i in range(len(kinds))
        ]
        d = duration_s

        def set_wecom(mode: str | None) -> Callable[[], None]:
            def act() -> None:
                wecom.fail = mode
                log(f"wecom: {mode or 'recovered'}")

            return act

        def set_sms(mode: str | None) -> Callable[[], None]:
            def act() -> None:
                sms.fail = mode
                log(f"sms: {mode or 'recovered'}")

            return act

        def set_disk(iops: int) -> Callable[[], None]:
            def act() -> None:
                assert disk is not None
                disk.set_iops(iops)
                log(f"slow disk: {'write IOPS capped at ' + str(iops) if iops else 'off'}")

            return act

        windows = [
            (t0 + 0.30 * d, set_wecom("http500")),
            (t0 + 0.42 * d, set_wecom("45009")),
            (t0 + 0.55 * d, set_wecom(None)),
            (t0 + 0.35 * d, set_sms("http503")),
            (t0 + 0.60 * d, set_sms(None)),
        ]
        fault_windows += [(t0 + 0.30 * d, t0 + 0.55 * d), (t0 + 0.35 * d, t0 + 0.60 * d)]
        if disk is not None and disk.available:
            slow_window = (t0 + 0.62 * d, t0 + 0.85 * d)
            windows += [(slow_window[0], set_disk(SLOW_IOPS)), (slow_window[1], set_disk(0))]
            fault_windows.append(slow_window)
            report.slow_disk = (
                f"write IOPS on block device {disk.device} capped at {SLOW_IOPS}/s for"
                f" {slow_window[1] - slow_window[0]:.0f} s (cgroup blkio throttle, FULL sync)"
            )
        elif disk is not None:
            report.slow_disk = disk.why_not
        timers = [_timer(at, act) for at, act in windows]
        try:
            for (kind, n), at in zip(kinds, slots, strict=True):
                wait = t0 + at - time.time()
                if wait > 0:
                    time.sleep(wait)
                fault(kind, n)
            pubs.join(duration_s + 120)
        finally:
            for t in timers:
                t.cancel()
            wecom.fail = sms.fail = None
            if disk is not None:
                disk.set_iops(0)
        publish_end = time.time()
        pubs.wait_acked(120)
        log("every event acknowledged by the broker")
        wait_for(stored_through(len(plan)), 180, "every event stored", every=0.2)
        log("every valid event stored")
        time.sleep(8.0)  # a hall that crossed the threshold last gets its 5 s and a tick
        _state_check(daemon, plan, report)
        _drain_notifications(daemon, db, log)
        monitor_stop.set()
        mon.join(5)
        daemon.stop()
        report.rate_per_s = len(plan) / max(1e-9, publish_end - t0)
        _count_events(report, plan, pubs, tail, db, fault_windows, slow_window)
        _count_notifications(report, db, wecom, sms, t0, work)
        report.redelivered_dropped = int(sum(dup_by_start.values()))
        if disk_full:
            report.disk_full = _disk_full_phase(work, broker, run, log)
        report.peak_rss_mib = daemon.peak_rss_kib / 1024
        report.daemon_processes = daemon.starts
    finally:
        monitor_stop.set()
        if pubs is not None:
            pubs.close()
        tail.close()
        if daemon.exited() is None and daemon.proc is not None:
            daemon.kill9()
        broker.stop()
        servers.stop()
        if disk is not None:
            disk.close()
        report.wall_s = time.monotonic() - started
    if out is None and report.ok:
        shutil.rmtree(work, ignore_errors=True)
    (work.exists() and (work / "report.txt").write_text(report.render() + "\n", encoding="utf-8"))
    return report


def _state_check(daemon: DaemonChild, plan: list[Planned], report: Report) -> None:
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


def _count_events(
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
    report.latency_all = _quantiles(lat_all)
    report.latency_steady = _quantiles(lat_steady)
    report.latency_slow_disk = _quantiles(lat_slow)


def _wecom_id(h: Hit) -> tuple[str, str, str]:
    """WeCom has no idempotency key: a message is its robot key and its exact content."""
    msgtype = str(h.body.get("msgtype"))
    return ("wecom", h.key, str(h.body.get(msgtype, {}).get("content")))


def _count_notifications(
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
    for h in wecom.accepted():
        got[_wecom_id(h)] += 1
    for h in sms.accepted():
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
            times = sorted(h.at - t0 for h in wecom.accepted() if _wecom_id(h) == k)
            report.note_repeats.append(explain(f"SHOWN TWICE: wecom {k[1]}", times))
    for h in sms.hits:
        if h.deduped:
            same = [x.at - t0 for x in sms.hits if x.key == h.key and (x.accepted or x.deduped)]
            report.note_repeats.append(explain(f"deduped: sms {h.key}", sorted(same)))
    firing = {key.split(":", 1)[0] for key, *_ in rows if ":queue_peak:" in key}
    report.halls_alerted = len(firing)


def _disk_full_phase(
    work: Path, broker: Mosquitto, run: str, log: Callable[[str], None]
) -> dict[str, Any]:
    """A daemon on a 2 MiB tmpfs: clear stop, intact DB, nothing acknowledged that was lost."""
    from hallwatch.sensors.publish import publish_all

    mnt = work / "tiny-disk"
    mnt.mkdir(exist_ok=True)
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", "") or str(err)
        return {"ok": True, "summary": f"not run: cannot mount a tmpfs ({detail.strip()})"}
    db = mnt / "hallwatch.db"
    lines: list[str] = []
    result: dict[str, Any] = {"lines": lines}
    d = DaemonChild(work / "disk-full", broker.url, db=db, client_id=f"hallwatch-full-{run}")
    try:
        d.start()
        time.sleep(0.5)  # its session's subscriptions in place
        n = 20000
        now = int(time.time() * 1000)
        msgs = [
            (
                "hall/full/ticket",
                json.dumps(
                    {
                        "id": f"tm-01:{i}@{run}",
                        "ts": now + i,
                        "type": "issued",
                        "ticket": f"A{i}",
                        "service": "提取",
                        "note": "x" * 150,
                    }
                ).encode(),
            )
            for i in range(n)
        ]
        publish_all("127.0.0.1", broker.port, msgs, client_id=f"faultload-full-{run}")
        log(f"disk full: {n} events acknowledged by the broker")
        wait_for(lambda: d.exited() is not None, 60, "the daemon to stop on the full disk")
        code = d.exited()
        d.proc = None
        text = d.log.read_text(errors="replace")
        full_lines = [ln.strip() for ln in text.splitlines() if "full" in ln.lower()]
        names_path = any(str(db) in ln or str(mnt) in ln for ln in full_lines)
        lines.append(f"daemon exit code {code}; error lines mentioning 'full':")
        lines += ["  " + ln[:160] for ln in full_lines[-3:]]
        lines.append(f"error names the database path: {'yes' if names_path else 'NO'}")
        con = sqlite3.connect(db, timeout=5)
        try:
            integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
            q = "SELECT count(*) FROM events WHERE hall = 'full'"
            before = int(con.execute(q).fetchone()[0])
        finally:
            con.close()
        lines.append(f"PRAGMA integrity_check on the full disk: {integrity}")
        lines.append(f"stored before the disk filled: {before} of {n}")
        subprocess.run(["mount", "-o", "remount,size=256m", str(mnt)], check=True)
        d.start()
        con = sqlite3.connect(db, timeout=5)

        def all_in() -> bool:
            q = "SELECT count(*) FROM events WHERE hall = 'full'"
            return int(con.execute(q).fetchone()[0]) >= n

        try:
            wait_for(all_in, 120, "the rest after the disk was enlarged", every=0.2)
            time.sleep(1.0)  # anything extra (a duplicate) would show now
            rows, distinct = con.execute(
                "SELECT count(*), count(DISTINCT key) FROM events WHERE hall = 'full'"
            ).fetchone()
        finally:
            con.close()
        d.stop()
        lines.append(
            f"after enlarging the disk and restarting: {distinct} of {n} stored,"
            f" {rows - distinct} duplicated"
        )
        ok = code not in (0, None) and integrity == "ok" and distinct == n and rows == n
        result["ok"] = ok
        result["names_path"] = names_path
        result["summary"] = (
            f"{'PASS' if ok else 'FAIL'}: stopped (exit {code}), DB intact, {n - before} events"
            f" it could not store were not acknowledged and arrived after the disk was enlarged"
            if ok
            else "FAIL: see below"
        )
    finally:
        if d.proc is not None and d.exited() is None:
            d.kill9()
        subprocess.run(["umount", str(mnt)], capture_output=True)
    return result


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
