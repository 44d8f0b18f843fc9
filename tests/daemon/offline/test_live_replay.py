"""A simulated day through a real Mosquitto into the daemon, recorded, and replayed offline."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hallwatch.daemon.core import state as state_mod
from hallwatch.daemon.main import decode_snapshot
from hallwatch.daemon.offline.replay import read_day, replay
from hallwatch.sensors.profiles import PROFILES
from hallwatch.sensors.simulator import simulate_day, write_day

from tests.conftest import ROOT, DaemonProcess, wait_until
from tests.harness.mosquitto import Mosquitto


def snapshot_state(db: Path) -> state_mod.HallsState:
    con = sqlite3.connect(db)
    try:
        (body,) = con.execute("SELECT body FROM snapshots ORDER BY upto DESC LIMIT 1").fetchone()
    finally:
        con.close()
    state, _ = decode_snapshot(bytes(body))
    assert state is not None
    return state


def test_day_file_replays_into_the_live_end_state(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess], tmp_path: Path
):
    """Live run through Mosquitto, `hallwatch record`, and offline replay agree on the end state."""
    day = simulate_day(PROFILES["outage"], seed=3)
    day_file = tmp_path / "day.jsonl"
    write_day(day, day_file)
    d = daemon_factory(broker.url)
    d.start()
    recorded = tmp_path / "recorded.jsonl"
    rec = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hallwatch.daemon.cli",
            "record",
            "--broker",
            broker.url,
            "--out",
            str(recorded),
            "--count",
            str(len(day.messages)),
        ],
        cwd=ROOT,
    )
    time.sleep(1.0)  # the recorder subscribes
    pub = subprocess.run(
        [
            sys.executable,
            "-m",
            "hallwatch.daemon.cli",
            "simulate",
            "--profile",
            "outage",
            "--seed",
            "3",
            "--broker",
            broker.url,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pub.returncode == 0, pub.stderr
    assert f"published {len(day.messages)} messages" in pub.stdout
    wait_until(lambda: d.health()["last_seq"] == len(day.messages), 60, "every event stored")
    assert rec.wait(60) == 0
    assert d.stop(signal.SIGTERM) == 0
    live = state_mod.encode(snapshot_state(d.db))

    from_file = replay(read_day(day_file))
    from_recording = replay(read_day(recorded))
    assert from_file.accepted == len(day.messages) and not from_file.rejected
    assert state_mod.encode(from_file.state) == live
    assert state_mod.encode(from_recording.state) == live
    hall = from_file.state.halls["h1"]
    assert hall.systems["core"].state == "up"
    assert hall.today is not None and hall.today.issued == sum(1 for t in day.truth if t.leg == 0)


def test_demo_shows_waiting_tickets_and_stops_on_sigint(tmp_path: Path):
    """`hallwatch demo` (embedded broker) shows waiting tickets in /metrics, exits 0 on SIGINT."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from tests.harness.mosquitto import free_port

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hallwatch.daemon.cli",
            "demo",
            "--speed",
            "900",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def waiting() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
        return sum(
            s.value
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
            if s.name == "hallwatch_queue_waiting"
        )

    try:
        wait_until(lambda: waiting() > 0, 90, "waiting tickets on /metrics")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/metrics" in out
    assert f"http://127.0.0.1:{port}/screen/h1" in out
    assert "已发送" in out  # progress lines with the simulated clock
