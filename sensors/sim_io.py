"""A simulated day out of the process: the recorded-day JSON Lines and its truth file, and the
live replay to an MQTT broker at QoS 1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from hallwatch.sensors.sim_day import Day


def _json(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def truth_path(path: Path) -> Path:
    """Where `write_day` puts the ground truth: "day.jsonl" -> "day.truth.jsonl"."""
    return path.with_suffix(".truth.jsonl")


def write_day(day: Day, path: Path | str) -> Path:
    """Write the recorded day (contract format) and its truth; returns the truth's path."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as f:
        for m in day.messages:
            f.write(_json({"topic": m.topic, "payload": m.payload}) + "\n")
    out = truth_path(path)
    with out.open("w", encoding="utf-8") as f:
        for t in day.truth:
            f.write(_json(asdict(t)) + "\n")
    return out


async def publish_live(
    day: Day,
    *,
    host: str,
    port: int,
    speed: float | None,
    username: str | None = None,
    password: str | None = None,
    on_progress: Callable[[float, int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Publish the day at QoS 1 in event-time order, `speed` times real time (None/0: at once).

    Returns how many messages were published. `on_progress(sim_time, sent)` is called about
    once a second of wall time, and once at the end. Setting `stop` ends the replay before the
    next message: on Python 3.11 a task cancel that lands as a QoS 1 acknowledgement arrives is
    lost inside `asyncio.wait_for` (gh-86296), so cancelling alone cannot stop the replay.
    """
    import aiomqtt  # only the live path needs a broker client

    if speed is not None and speed < 0:
        raise ValueError(f"speed: must be None, 0 or positive, got {speed}")
    if not day.messages:
        return 0
    loop = asyncio.get_running_loop()
    first = day.messages[0].at
    wall0 = last_report = loop.time()
    sent = 0

    def report(sim_time: float) -> None:
        nonlocal last_report
        if on_progress is not None and loop.time() - last_report >= 1.0:
            last_report = loop.time()
            on_progress(sim_time, sent)

    async with aiomqtt.Client(host, port, username=username, password=password) as client:
        for m in day.messages:
            if speed:
                due = wall0 + (m.at - first) / speed
                while (delay := due - loop.time()) > 0 and not (stop and stop.is_set()):
                    await asyncio.sleep(min(delay, 0.2))  # wake to report and to see `stop`
                    report(first + (loop.time() - wall0) * speed)
            if stop is not None and stop.is_set():
                return sent
            await client.publish(m.topic, _json(m.payload).encode("utf-8"), qos=1, retain=m.retain)
            sent += 1
            report(m.at)
    if on_progress is not None:
        on_progress(day.messages[-1].at, sent)
    return sent
