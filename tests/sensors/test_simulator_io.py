"""Tests for the simulator's files and live replay: the recorded day and its truth on disk, and
publish_live to a real Mosquitto (order, retain, pacing, stop)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hallwatch.sensors.profiles import PROFILES
from hallwatch.sensors.simulator import Day, publish_live, simulate_day, truth_path, write_day


@cache
def day(name: str, seed: int) -> Day:
    return simulate_day(PROFILES[name], seed)


def test_write_day_writes_contract_lines_and_truth(tmp_path: Path) -> None:
    """The recorded day is one {"topic","payload"} per line in time order, truth beside it."""
    d = day("quiet", 1)
    path = tmp_path / "quiet.jsonl"
    out = write_day(d, path)
    assert out == truth_path(path) == tmp_path / "quiet.truth.jsonl"
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert lines == [{"topic": m.topic, "payload": m.payload} for m in d.messages]
    truth = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [t["ticket"] for t in truth] == [t.ticket for t in d.truth]
    assert set(truth[0]) >= {
        "hall",
        "ticket",
        "service",
        "priority",
        "issued_at",
        "called_at",
        "window",
        "outcome",
        "abandoned",
    }


@pytest.fixture(scope="module")
def sim_broker_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A throwaway Mosquitto on a free local port."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.skip("mosquitto is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("mosquitto did not start")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_publish_live_delivers_in_order(sim_broker_port: int) -> None:
    """Published messages reach a subscriber intact, in order, retained where they should be."""
    import aiomqtt

    full = day("quiet", 1)
    part = dataclasses.replace(full, messages=full.messages[:300])

    async def run() -> tuple[int, list[tuple[str, dict[str, Any]]]]:
        got: list[tuple[str, dict[str, Any]]] = []
        async with aiomqtt.Client("127.0.0.1", sim_broker_port) as sub:
            await sub.subscribe("hall/#", qos=1)
            sent = await publish_live(part, host="127.0.0.1", port=sim_broker_port, speed=None)
            async with asyncio.timeout(5):
                async for message in sub.messages:
                    assert isinstance(message.payload, bytes)
                    got.append((str(message.topic), json.loads(message.payload)))
                    if len(got) == sent:
                        break
        return sent, got

    sent, got = asyncio.run(run())
    assert sent == 300
    assert got == [(m.topic, m.payload) for m in part.messages]

    async def retained() -> set[str]:
        seen: set[str] = set()
        async with aiomqtt.Client("127.0.0.1", sim_broker_port) as late:
            await late.subscribe("hall/#", qos=1)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    async for message in late.messages:
                        seen.add(str(message.topic))
        return seen

    expected = {m.topic for m in part.messages if m.retain}
    assert expected and asyncio.run(retained()) == expected


def test_publish_live_paces_by_speed(sim_broker_port: int) -> None:
    """At speed 4, two seconds of event time take about half a second, with progress reports."""
    base = day("quiet", 1)
    msgs = [
        dataclasses.replace(m, at=base.messages[0].at + i * 0.5)
        for i, m in enumerate(base.messages[:5])
    ]
    progress: list[tuple[float, int]] = []
    start = time.monotonic()
    sent = asyncio.run(
        publish_live(
            dataclasses.replace(base, messages=msgs),
            host="127.0.0.1",
            port=sim_broker_port,
            speed=4.0,
            on_progress=lambda at, n: progress.append((at, n)),
        )
    )
    elapsed = time.monotonic() - start
    assert sent == 5
    assert 0.45 <= elapsed < 2.0
    assert progress[-1] == (msgs[-1].at, 5)


def test_publish_live_ends_when_stop_is_set(sim_broker_port: int) -> None:
    """Setting `stop` ends a paced replay before its next message, without cancelling it."""
    base = day("quiet", 1)
    msgs = [
        dataclasses.replace(m, at=base.messages[0].at + i * 10.0)
        for i, m in enumerate(base.messages[:50])
    ]

    async def run() -> tuple[int, float]:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.35, stop.set)
        start = time.monotonic()
        sent = await publish_live(
            dataclasses.replace(base, messages=msgs),
            host="127.0.0.1",
            port=sim_broker_port,
            speed=100.0,  # one message every 0.1 s: 50 would take 5 s
            stop=stop,
        )
        return sent, time.monotonic() - start

    sent, took = asyncio.run(run())
    assert 2 <= sent <= 6
    assert took < 2.0
