"""Simulated hall traffic for `bench users`: many halls from a few simulated days, and a paced
QoS 1 publisher that stamps each event with the time it is published.

Simulating a day costs about 0.2 s, so N halls reuse `POOL` simulated days (hall h replays day
h % POOL under its own hall id, shifted by a few seconds so halls do not move in lockstep).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterable, Sequence
from functools import cache

import paho.mqtt.client as mqtt
from hallwatch.sensors.profiles import PROFILES
from hallwatch.sensors.simulator import SimMessage, simulate_day
from paho.mqtt.enums import CallbackAPIVersion

POOL = 16
#: (sim time, topic, payload) of one hall's day, sorted by time.
Msg = tuple[float, str, dict[str, object]]


@cache
def _day(profile: str, seed: int) -> tuple[SimMessage, ...]:
    day = simulate_day(dataclasses.replace(PROFILES[profile], hall="hx"), seed=seed)
    return tuple(day.messages)


def _hall_day(profile: str, h: int) -> list[Msg]:
    offset = (h * 7.3) % 60.0
    prefix = "hall/hx/"
    out: list[Msg] = []
    for m in _day(profile, h % POOL + 1):
        topic = f"hall/h{h}/" + m.topic.removeprefix(prefix)
        out.append((m.at + offset, topic, m.payload))
    return out


def merged(halls: int, profile: str = "peak", *, thin_heartbeats: bool = False) -> list[Msg]:
    """Every hall's day, interleaved by time. `thin_heartbeats` keeps a device's report only when
    its state changes (and its last one): the day's state without 87 % of its volume."""
    out: list[Msg] = []
    for h in range(halls):
        day = _hall_day(profile, h)
        if thin_heartbeats:
            day = thin(day)
        out += day
    out.sort(key=lambda m: m[0])
    return out


def thin(day: list[Msg]) -> list[Msg]:
    last: dict[str, int] = {}
    seen: dict[str, object] = {}
    keep: list[bool] = []
    for i, (_, topic, payload) in enumerate(day):
        if "/device/" not in topic:
            keep.append(True)
            continue
        state = payload.get("state")
        keep.append(seen.get(topic) != state)
        seen[topic] = state
        last[topic] = i
    for i in last.values():
        keep[i] = True
    return [m for m, k in zip(day, keep, strict=True) if k]


def split_after_opening(msgs: list[Msg], after_s: float) -> tuple[list[Msg], list[Msg]]:
    """(the day until `after_s` after its first ticket, the rest)."""
    first = next((m[0] for m in msgs if m[2].get("type") == "issued"), None)
    if first is None:
        return [], msgs
    i = next((i for i, m in enumerate(msgs) if m[0] >= first + after_s), len(msgs))
    return msgs[:i], msgs[i:]


def encode(
    msgs: Sequence[Msg], run: str = "", end_at: float | None = None
) -> list[tuple[str, bytes]]:
    """(topic, payload) with ids made unique to `run` and ts shifted so the last is `end_at`
    (default: a second ago), as `bench.hall_traffic` does."""
    if not msgs:
        return []
    shift = (end_at if end_at is not None else time.time() - 1) - msgs[-1][0]
    out = []
    for at, topic, payload in msgs:
        body = {**payload, "id": f"{payload['id']}{run}", "ts": int((at + shift) * 1000)}
        out.append((topic, json.dumps(body, ensure_ascii=False).encode()))
    return out


def publish_steady(
    host: str, port: int, msgs: Iterable[tuple[str, bytes]], client_id: str, inflight: int = 1000
) -> float:
    """Publish at QoS 1 as fast as the broker acknowledges, never more than `inflight` unacked
    (paho's own queue is never used: it walks its in-flight messages on every PUBACK). Waits for
    every PUBACK; fails when the broker acknowledges nothing for 60 s. Returns the wall time of
    the first publish."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(inflight)
    window = threading.BoundedSemaphore(inflight)

    def on_publish(c: mqtt.Client, u: object, mid: int, rc: object, props: object) -> None:
        window.release()

    client.on_publish = on_publish
    client.connect(host, port, keepalive=30)
    client.loop_start()
    first = 0.0
    try:
        for topic, payload in msgs:
            if not window.acquire(timeout=60):
                raise TimeoutError("the broker acknowledged nothing for 60 s")
            if not first:
                first = time.time()
            client.publish(topic, payload, qos=1)
        for _ in range(inflight):
            if not window.acquire(timeout=60):
                raise TimeoutError("the broker acknowledged nothing for 60 s")
        return first
    finally:
        client.disconnect()
        client.loop_stop()


def paced_publish(
    host: str, port: int, msgs: Sequence[Msg], rate: float, run: str, client_id: str
) -> dict[tuple[str, str], list[float]]:
    """Publish `msgs` at QoS 1, `rate` a second, each stamped `ts` = now; wait for every PUBACK.
    Returns the wall-clock publish times of every `issued` ticket, by (hall, ticket)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    lock = threading.Lock()
    pending = [0]

    def on_publish(c: mqtt.Client, u: object, mid: int, rc: object, props: object) -> None:
        with lock:
            pending[0] -= 1

    client.on_publish = on_publish
    client.connect(host, port, keepalive=30)
    client.loop_start()
    issued: dict[tuple[str, str], list[float]] = {}
    try:
        start = time.perf_counter() + 0.05
        for i, (_, topic, payload) in enumerate(msgs):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            now = time.time()
            body = {**payload, "id": f"{payload['id']}{run}", "ts": int(now * 1000)}
            raw = json.dumps(body, ensure_ascii=False).encode()
            with lock:
                pending[0] += 1
            client.publish(topic, raw, qos=1)
            if payload.get("type") == "issued":
                key = (topic.split("/")[1], str(payload["ticket"]))
                issued.setdefault(key, []).append(now)
        deadline = time.monotonic() + 60
        while pending[0] > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        if pending[0] > 0:
            raise TimeoutError(f"{pending[0]} paced publishes not acknowledged")
        return issued
    finally:
        client.disconnect()
        client.loop_stop()
