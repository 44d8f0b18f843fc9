"""Shared fixtures: a private Mosquitto per test and the daemon as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon.mosquitto import Mosquitto, find_mosquitto, free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A Mosquitto of this test's own, with persistence, on a free loopback port."""
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed: run ./scripts/test, which installs it")
    mosq = Mosquitto(tmp_path / "mosquitto")
    mosq.start()
    yield mosq
    mosq.stop()


def wait_until(pred: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll `pred` until it is truthy; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_err: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except (OSError, KeyError, ValueError) as err:
            last_err = err
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last error: {last_err})")


class DaemonProcess:
    """`hallwatch run` as a subprocess, with helpers to read its HTTP side."""

    def __init__(self, workdir: Path, broker_url: str, *, extra_env: dict[str, str] | None = None):
        self.workdir = workdir
        self.broker_url = broker_url
        self.db = workdir / "hallwatch.db"
        self.port = free_port()
        self.log = workdir / "daemon.log"
        self.env = {
            **os.environ,
            "HALLWATCH_MQTT_CLIENT_ID": f"hallwatch-test-{os.getpid()}",
            "HALLWATCH_MQTT_RECONNECT_MIN_S": "0.2",
            "HALLWATCH_MQTT_RECONNECT_MAX_S": "1.0",
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_connected: bool = True) -> None:
        cmd = [sys.executable, "-m", "daemon.cli", "run", "--broker", self.broker_url]
        cmd += ["--db", str(self.db), "--listen", f"127.0.0.1:{self.port}"]
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=fh, stderr=subprocess.STDOUT
            )
        if wait_connected:
            wait_until(self.healthy, 30, "the daemon to connect")

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"daemon exited with {self.proc.returncode}:\n{self.log.read_text()}")
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

    def total(self, name: str, **labels: str) -> float:
        """Sum of every series of `name` whose labels include `labels`."""
        want = set(labels.items())
        return sum(v for (n, lab), v in self.metrics().items() if n == name and want <= set(lab))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Makes daemons against a broker; any still running at the end are killed."""
    made: list[DaemonProcess] = []

    def make(broker_url: str, **kw: object) -> DaemonProcess:
        d = DaemonProcess(tmp_path / f"daemon{len(made)}", broker_url, **kw)  # type: ignore[arg-type]
        d.workdir.mkdir(parents=True, exist_ok=True)
        made.append(d)
        return d

    yield make
    for d in made:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
