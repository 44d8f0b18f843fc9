"""Processes `bench users` measures: the daemon (`hallwatch run`) and the bare subscriber, both
children of the bench, read the same way from /proc (CPU: utime + stime of /proc/PID/stat;
memory: VmRSS of /proc/PID/status)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests import REPO as ROOT
from tests.harness.procs import DaemonChild, wait_for

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int) -> float:
    """The process's resident set now (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class BareProc:
    """`python -m tests.harness.bare_sub` as a child; started, it is subscribed ("ready")."""

    def __init__(self, host: str, port: int, mode: str, arg: str, out: Path | None = None):
        cmd = [sys.executable, "-m", "tests.harness.bare_sub", host, str(port), mode, arg]
        cmd += [str(out)] if out is not None else []
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = self._line(30)
        if line != "ready":
            raise RuntimeError(f"bare subscriber did not start: {line!r}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"bare subscriber said nothing within {timeout:.0f} s")
        return self.proc.stdout.readline().strip()

    def wait_done(self, timeout: float) -> float:
        """The wall time it handled its Nth message."""
        line = self._line(timeout)
        if not line.startswith("done "):
            raise RuntimeError(f"bare subscriber: {line!r}")
        return float(line.split()[1])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_daemon(
    work: Path, broker_url: str, halls: int, name: str, timeout: float = 60
) -> DaemonChild:
    """`hallwatch run` with default settings on a fresh database in `work`, except the hall cap
    (`limits.halls`, 100 by default), raised to `halls` so every hall is tracked."""
    env = {"HALLWATCH_LIMITS_HALLS": str(max(100, halls))}
    child = DaemonChild(work, broker_url, client_id=f"bench-{name}", env=env)
    child.start(timeout=timeout)
    return child


def stop_daemon(child: DaemonChild, timeout: float = 120) -> None:
    """SIGTERM and wait; one that does not stop in `timeout` is killed and reported, not fatal
    (seen at 100 halls under load: no exit within 30 s of SIGTERM)."""
    try:
        child.stop(timeout=timeout)
    except RuntimeError as err:
        print(f"  .. FINDING: {err} (killed; log {child.log})", file=sys.stderr, flush=True)
        child.proc = None


def processed(child: DaemonChild) -> int:
    """Input events the daemon has handled: hallwatch_events_total over every result."""
    total = 0.0
    for (name, _), value in child.metrics().items():
        if name == "hallwatch_events_total":
            total += value
    return int(total)


def stored_after(child: DaemonChild, seq: int) -> int:
    """Events the daemon has stored past `seq` (/healthz `last_seq`: cheap at 500 halls, where
    a /metrics text is 3.5 MB; ingest hands each batch to the state as it commits it)."""
    return max(0, int(str(child.health()["last_seq"])) - seq)


def wait_processed(
    child: DaemonChild, n: int, timeout: float, count: Callable[[], int] | None = None
) -> float:
    """Poll `count` (default: hallwatch_events_total of /metrics) until `n` events are
    processed; return the wall time it saw them. Polls every 0.2 s until 90 % are in, then
    every 10 ms, so polling costs the daemon little."""
    deadline = time.monotonic() + timeout
    got = 0
    while time.monotonic() < deadline:
        if child.exited() is not None:
            raise RuntimeError(f"daemon exited; log: {child.log}")
        try:
            got = count() if count is not None else processed(child)
        except OSError:  # TimeoutError included: a busy daemon may take > 5 s to answer
            time.sleep(0.2)
            continue
        if got >= n:
            return time.time()
        time.sleep(0.2 if got < 0.9 * n else 0.01)
    raise TimeoutError(f"daemon processed {got} of {n} events in {timeout:.0f} s")


def settle(child: DaemonChild, timeout: float = 120) -> None:
    """Wait until the estimate lane has no backlog (everything fed has been estimated)."""
    wait_for(lambda: child.health().get("estimate_backlog") == 0, timeout, "estimates", 0.2)


def get_timed(url: str) -> tuple[float, int]:
    """(seconds, bytes) of one GET, connection included."""
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as resp:
        body = resp.read()
    return time.perf_counter() - t0, len(body)
