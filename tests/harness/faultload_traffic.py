"""The fault-and-load suite's load: simulated peak days planned as events, QoS 1 publishers
replaying the plan, and a reader following what the daemon stored."""

from __future__ import annotations

import dataclasses
import json
import random
import sqlite3
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.harness.faultload_report import PROVINCE_HALLS
from tests.harness.procs import wait_for

SKEW_SHARE = 0.05  # events whose device clock is a few seconds off
SKEW_MAX_S = 5.0


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
