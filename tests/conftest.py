"""Shared fixtures: a private Mosquitto per test and the daemon as a real subprocess."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.mosquitto import Mosquitto, find_mosquitto
from tests.harness.procs import ROOT as ROOT  # re-exported for the tests
from tests.harness.procs import DaemonChild


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


class DaemonProcess(DaemonChild):
    """`hallwatch run` as a subprocess (tests/harness/procs.py)
    that fails the test, with the daemon's
    log, when it exits unexpectedly."""

    def __init__(self, workdir: Path, broker_url: str, *, extra_env: dict[str, str] | None = None):
        super().__init__(
            workdir, broker_url, client_id=f"hallwatch-test-{os.getpid()}", env=extra_env
        )

    def healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"daemon exited with {self.proc.returncode}:\n{self.log.read_text()}")
        return super().healthy()

    def total(self, name: str, **labels: str) -> float:
        """Sum of every series of `name` whose labels include `labels`."""
        want = set(labels.items())
        return sum(v for (n, lab), v in self.metrics().items() if n == name and want <= set(lab))


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
