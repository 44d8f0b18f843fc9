"""`hallwatch run` as a child process, for suites that crash and restart it (faultload).

Reads the child's HTTP side (/healthz, /metrics) with the standard library and its memory from
/proc, so a supervisor needs no event loop. Raises `RuntimeError` (never pytest's failure) so
product code and tests can both use it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests import REPO as ROOT
from tests.harness.mosquitto import free_port


def wait_for(pred: Callable[[], object], timeout: float, what: str, every: float = 0.05) -> float:
    """Poll `pred` until truthy; return the seconds it took, or raise TimeoutError naming `what`."""
    started = time.monotonic()
    last: Exception | None = None
    while time.monotonic() - started < timeout:
        try:
            if pred():
                return time.monotonic() - started
        except (OSError, KeyError, ValueError) as err:
            last = err
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last})")


def vm_hwm_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM) in KiB, 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class DaemonChild:
    """One `hallwatch run` at a time on a fixed DB, HTTP port and client id; restartable."""

    def __init__(
        self,
        workdir: Path,
        broker_url: str,
        *,
        db: Path | None = None,
        config: Path | None = None,
        client_id: str | None = None,
        env: Mapping[str, str] | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> None:
        self.workdir = workdir
        self.broker_url = broker_url
        self.db = db or workdir / "hallwatch.db"
        self.port = free_port()
        self.log = workdir / "daemon.log"
        self.on_start = on_start
        self.env = {
            **os.environ,
            "HALLWATCH_MQTT_CLIENT_ID": client_id or f"hallwatch-child-{os.getpid()}",
            "HALLWATCH_MQTT_RECONNECT_MIN_S": "0.2",
            "HALLWATCH_MQTT_RECONNECT_MAX_S": "1.0",
            **(env or {}),
        }
        if config is not None:
            self.env["HALLWATCH_CONFIG"] = str(config)
        self.proc: subprocess.Popen[bytes] | None = None
        self.peak_rss_kib = 0
        self.starts = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, wait_connected: bool = True, timeout: float = 30) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "hallwatch.daemon.cli", "run", "--broker", self.broker_url]
        cmd += ["--db", str(self.db), "--listen", f"127.0.0.1:{self.port}"]
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=fh, stderr=subprocess.STDOUT
            )
        self.starts += 1
        if self.on_start is not None:
            self.on_start(self.proc.pid)
        if wait_connected:
            wait_for(self.healthy, timeout, "the daemon to connect")

    def exited(self) -> int | None:
        """The exit code if the process ended, else None."""
        return None if self.proc is None else self.proc.poll()

    def healthy(self) -> bool:
        if self.proc is None:
            return False
        if self.proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {self.proc.returncode}; log: {self.log}")
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=2) as resp:
                return bool(json.loads(resp.read())["ok"])
        except urllib.error.HTTPError:
            return False

    def health(self) -> dict[str, object]:
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=2) as resp:
                return json.loads(resp.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as err:
            return json.loads(err.read())  # type: ignore[no-any-return]

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics, keyed by (name, sorted labels)."""
        with urllib.request.urlopen(self.base + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
        out = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def sample(self, name: str, **labels: str) -> float | None:
        return self.metrics().get((name, tuple(sorted(labels.items()))))

    def note_memory(self) -> int:
        """Fold the running process's VmHWM into `peak_rss_kib`; return the current reading."""
        pid = self.pid
        kib = vm_hwm_kib(pid) if pid is not None and self.exited() is None else 0
        self.peak_rss_kib = max(self.peak_rss_kib, kib)
        return kib

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal and wait; returns the exit code (negative for a signal)."""
        if self.proc is None:
            return 0
        self.note_memory()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # Every thread's stack into its log (the daemon registers SIGUSR1 for that), then
            # kill: the failure says where it hung, even with its event loop blocked.
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(1.0)
            self.proc.kill()
            self.proc.wait()
            tail = (
                self.log.read_text(errors="replace").splitlines()[-60:] if self.log.exists() else []
            )
            raise RuntimeError(
                f"daemon did not stop within {timeout:.0f} s of {sig}; the end of {self.log}:\n"
                + "\n".join(tail)
            ) from None
        self.proc = None
        return code

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)
