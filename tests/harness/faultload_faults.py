"""The fault-and-load suite's faults besides kill -9 and broker restarts: the order and times of
those, the providers' failing windows, a slow disk (cgroup blkio) and the full-disk phase."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from tests.harness.mosquitto import Mosquitto
from tests.harness.procs import DaemonChild, wait_for

SLOW_IOPS = 25  # write IOs per second on the DB's device during the slow-disk window


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


def start_timer(at: float, action: Callable[[], None]) -> threading.Timer:
    t = threading.Timer(max(0.0, at - time.time()), action)
    t.daemon = True
    t.start()
    return t


def disk_full_phase(
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


def fault_order(kills: int, broker_restarts: int) -> list[tuple[str, int]]:
    """Kills and broker restarts interleaved, a kill first: [("kill", 1), ("broker", 1), ...]."""
    kinds = []
    k = b = 0
    while k < kills or b < broker_restarts:
        if k < kills and (k <= b or b >= broker_restarts):
            k += 1
            kinds.append(("kill", k))
        else:
            b += 1
            kinds.append(("broker", b))
    return kinds


def fault_slots(n: int, duration_s: float) -> list[float]:
    """`n` fault times (seconds into the run), spread over 20 % to 80 % of the load."""
    return [0.2 * duration_s + i * (0.6 * duration_s / max(1, n - 1)) for i in range(n)]
