"""A seeded world for the simulation test: hall days as a broker would deliver them.

`world(seed)` gives a list of steps, each the fake clock's time and the batch of raw MQTT
messages (topic, payload bytes) delivered then. The days follow the contract loosely (windows
open and call tickets, doors count people, devices beat, systems fail), and then the delivery is
made hostile: duplicates, reordering, late redelivery across midnight, stale and future stamps,
floods past every cap, door counter resets, and values no device should send (huge numbers,
NUL and bidi characters, wrong types, broken JSON and UTF-8).

The same seed gives the same steps, byte for byte; nothing here reads a clock or the network.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hallwatch.daemon.core.workdays import WorkCalendar

ZONE = ZoneInfo("Asia/Shanghai")
SERVICES = ("提取", "缴存", "贷款", "转移")
HOSTILE_TEXT = ("A\x00B", "x\u202ey", "\u2066w\u2069", "a\u200fb", "\x1b[31m", "\x85x", "z\u061c")
_CALENDAR = WorkCalendar()


@dataclass(frozen=True, slots=True)
class Msg:
    deliver: float  # when the broker hands it to the daemon
    order: int  # tie-break, so the delivery order is total and seeded
    topic: str
    payload: bytes


@dataclass(slots=True)
class Step:
    now: float  # the fake clock during this step
    messages: list[tuple[str, bytes]]
    tick: bool  # whether the alert tick runs after the batch


@dataclass(slots=True)
class Chaos:
    """How hostile one seed's world is (each seed draws its own mix)."""

    duplicate: float
    late: float
    stale: float
    future: float
    hostile: float
    floods: int


@dataclass(slots=True)
class _Builder:
    rng: random.Random
    chaos: Chaos
    msgs: list[Msg] = field(default_factory=list)
    n: int = 0

    def eid(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}:{self.n:07d}"

    def stamp(self, ts: float) -> int | str:
        if self.rng.random() < 0.5:
            return int(ts * 1000)
        return datetime.fromtimestamp(ts, ZONE).isoformat(timespec="milliseconds")

    def raw(self, deliver: float, topic: str, payload: bytes) -> None:
        self.n += 1
        self.msgs.append(Msg(deliver, self.n, topic, payload))

    def emit(self, ts: float, topic: str, body: dict[str, Any], prefix: str = "dev") -> None:
        """One device message at event time `ts`, delivered with the world's faults."""
        rng, ch = self.rng, self.chaos
        body = {"id": self.eid(prefix), "ts": self.stamp(ts), **body}
        lag = rng.expovariate(2.0)
        if rng.random() < ch.late:
            lag = rng.uniform(60.0, 12 * 3600.0)  # a late redelivery, maybe after midnight
        deliver = ts + lag
        if rng.random() < ch.stale:
            # A device with a 1970 clock, or yesterday's stamp on a new message.
            body["ts"] = self.stamp(rng.choice([1.0, 86400.0 * 3, ts - 86400.0]))
        if rng.random() < ch.future:
            # Ahead of the daemon's clock: a little (accepted) or far (rejected as bad_ts).
            body["ts"] = self.stamp(deliver + rng.choice([30.0, 250.0, 400.0, 86400.0 * 30]))
        if rng.random() < ch.hostile:
            self.raw(deliver, topic, hostile(rng, topic, body))
            return
        payload = json.dumps(body, ensure_ascii=False).encode()
        self.raw(deliver, topic, payload)
        if rng.random() < ch.duplicate:
            self.raw(deliver + rng.choice([0.0, 1.0, rng.uniform(0, 900.0)]), topic, payload)


def _bad_ts(rng: random.Random, b: dict[str, Any]) -> None:
    b["ts"] = rng.choice([10**400, -5, 1.5e12, "yesterday", None, "2026-13-40T00:00:00+08:00"])


def _bad_id(rng: random.Random, b: dict[str, Any]) -> None:
    b["id"] = rng.choice(["", "i" * 200, *HOSTILE_TEXT, 7])


def _bad_number(rng: random.Random, b: dict[str, Any]) -> None:
    if "in_total" in b:
        b["in_total"] = rng.choice([10**400, 2**63 - 1, 10**12, -1, 1.5, "9", True])
    elif "ticket" in b:
        b["ticket"] = rng.choice([*HOSTILE_TEXT, 10**400, 2**63 - 1, -3, "", "t" * 40, None])
    else:
        b["state"] = rng.choice(["on", 1, None, "open\x00"])


def _bad_names(rng: random.Random, b: dict[str, Any]) -> None:
    for k in ("service", "window", "complaint_id", "received_by"):
        if k in b:
            b[k] = rng.choice(HOSTILE_TEXT)
    if "services" in b:
        b["services"] = [rng.choice(HOSTILE_TEXT), *b["services"]]


def _bad_text(rng: random.Random, b: dict[str, Any]) -> None:
    for k in ("summary", "detail"):
        b[k] = "投诉\x00内容\u202e反转" + rng.choice(HOSTILE_TEXT)
    if "services" in b:
        b["services"] = ["s"] * 3000  # one service, many times


def _bad_type(rng: random.Random, b: dict[str, Any]) -> None:
    b["type"] = rng.choice(["issued\u202e", "exploded", 3])


def _padded(rng: random.Random, b: dict[str, Any]) -> None:
    b["padding"] = "x" * 70_000


def _bad_flags(rng: random.Random, b: dict[str, Any]) -> None:
    b["priority"] = rng.choice(["vip", "", None])
    b["emergency"] = "yes"


def _field_missing(rng: random.Random, b: dict[str, Any]) -> None:
    b.pop(rng.choice(sorted(b)), None)


def _bad_shapes(rng: random.Random, b: dict[str, Any]) -> None:
    b["services"] = {"a": 1}
    b["out_total"] = 10**400


# Payloads that are not a JSON object at all, then ways to spoil a valid one (kinds 4 to 13).
_RAW: tuple[Callable[[dict[str, Any]], bytes], ...] = (
    lambda b: b'{"id": "x", "ts": ',  # cut short
    lambda b: b"\xff\xfe not utf-8 \xc3",
    lambda b: b"[" * 5000 + b"]" * 5000,
    lambda b: json.dumps([b]).encode(),
)
_SPOIL: tuple[Callable[[random.Random, dict[str, Any]], None], ...] = (
    _bad_ts,
    _bad_id,
    _bad_number,
    _bad_names,
    _bad_text,
    _bad_type,
    _padded,
    _bad_flags,
    _field_missing,
    _bad_shapes,
)


def hostile(rng: random.Random, topic: str, body: dict[str, Any]) -> bytes:
    """A payload no device should send, derived from a valid one."""
    kind = rng.randrange(len(_RAW) + len(_SPOIL))
    b = dict(body)
    if kind < len(_RAW):
        return _RAW[kind](b)
    _SPOIL[kind - len(_RAW)](rng, b)
    return json.dumps(b, ensure_ascii=False).encode()


def _working_days(rng: random.Random, n: int) -> list[date]:
    day = date(2026, 1, 5) + timedelta(days=rng.randrange(320))
    out: list[date] = []
    while len(out) < n:
        if _CALENDAR.is_working_day(day):
            out.append(day)
        day += timedelta(days=1)
    return out


def _at(day: date, seconds: float) -> float:
    return datetime.combine(day, datetime.min.time(), ZONE).timestamp() + seconds


def _hall_day(b: _Builder, hall: str, day: date, busy: float) -> None:
    """One hall's business day: windows, tickets, doors, devices, systems, complaints."""
    rng = b.rng
    root = f"hall/{hall}"
    opening = _at(day, 8.5 * 3600 + rng.uniform(0, 1800))
    closing = _at(day, 17 * 3600)
    n_win = rng.randint(2, 4)
    windows: dict[str, list[str]] = {}
    for i in range(n_win):
        windows[f"w{i + 1}"] = sorted(rng.sample(SERVICES, rng.randint(1, 3)))
    for s in SERVICES:  # every service has a window
        if not any(s in v for v in windows.values()):
            rng.choice(list(windows.values())).append(s)
    devices = {"tm-1": "ticket_machine", "dc-1": "door_counter", "wt-1": "window_terminal"}
    for dev, kind in devices.items():
        b.emit(opening - 600, f"{root}/device/{dev}", {"state": "online", "kind": kind})
    b.emit(opening - 300, f"{root}/system/core", {"state": "up"})
    free: dict[str, float] = {}
    for w, services in windows.items():
        b.emit(opening, f"{root}/window/{w}", {"state": "open", "services": services})
        free[w] = opening
    # Lunch: one window pauses.
    lunch = rng.choice(list(windows))
    topic = f"{root}/window/{lunch}"
    b.emit(_at(day, 12 * 3600), topic, {"state": "paused", "services": windows[lunch]})
    back = _at(day, 13 * 3600)
    b.emit(back, topic, {"state": "open", "services": windows[lunch]})
    # Arrivals: a base load and, on busy days, a surge that should trip the peak rule.
    n = int(rng.randint(15, 45) * busy)
    arrivals = sorted(rng.uniform(opening, closing - 1800) for _ in range(n))
    if busy > 1.2:
        start = rng.uniform(opening + 1800, closing - 7200)
        arrivals = sorted(arrivals + [start + rng.uniform(0, 900) for _ in range(int(25 * busy))])
    people: list[tuple[float, int]] = []  # (time, +1 in / -1 out)
    for k, t in enumerate(arrivals):
        ticket = f"{'GAN'[k % 3]}{k:03d}"
        service = rng.choice(SERVICES)
        prio = rng.choices(["normal", "green", "appointment"], [8, 1, 1])[0]
        topic = f"{root}/ticket"
        b.emit(t, topic, {"type": "issued", "ticket": ticket, "service": service, "priority": prio})
        party = 1 + (rng.random() < 0.2)
        people.append((t - rng.uniform(0, 60), party))
        cands = [w for w, s in windows.items() if service in s]
        w = min(cands, key=lambda x: free[x])
        if w == lunch and back > free[w] > back - 3600:
            free[w] = back
        call = max(t, free[w])
        patience = rng.expovariate(1 / 2400.0)
        if call - t > patience and rng.random() < 0.7:
            b.emit(t + patience, topic, {"type": "cancelled", "ticket": ticket})
            people.append((t + patience + 5, -party))
            continue
        b.emit(call, topic, {"type": "called", "ticket": ticket, "window": w})
        if call - t > patience:
            b.emit(call + 60, topic, {"type": "no_show", "ticket": ticket, "window": w})
            free[w] = call + 70
            people.append((t + patience, -party))
            continue
        dur = rng.lognormvariate(math.log(240), 0.5)
        end = call + dur
        if rng.random() < 0.06:
            other = rng.choice([s for s in SERVICES if s != service])
            b.emit(end, topic, {"type": "transferred", "ticket": ticket, "service": other})
            w2 = min((x for x, s in windows.items() if other in s), key=lambda x: free[x])
            call2 = max(end + 30, free[w2])
            b.emit(call2, topic, {"type": "called", "ticket": ticket, "window": w2})
            end2 = call2 + rng.lognormvariate(math.log(200), 0.4)
            b.emit(end2, topic, {"type": "completed", "ticket": ticket, "window": w2})
            free[w2] = end2 + 10
            free[w] = end + 10
            people.append((end2 + rng.uniform(5, 120), -party))
            continue
        b.emit(end, topic, {"type": "completed", "ticket": ticket, "window": w})
        free[w] = end + 10
        people.append((end + rng.uniform(5, 120), -party))
    for w, services in windows.items():
        b.emit(closing + 600, f"{root}/window/{w}", {"state": "closed", "services": services})
    _doors(b, root, opening, closing + 1800, people)
    _devices(b, root, devices, opening, closing)
    if rng.random() < 0.35:
        down = rng.uniform(opening + 600, closing - 3600)
        b.emit(down, f"{root}/system/core", {"state": "down", "detail": "核心系统无响应"})
        b.emit(down + rng.uniform(600, 3000), f"{root}/system/core", {"state": "up"})
    for _ in range(rng.randint(0, 2)):
        t = rng.uniform(opening, closing)
        body = {
            "complaint_id": b.eid("c"),
            "channel": rng.choice(["visit", "phone", "letter", "online"]),
            "severity": rng.choice(["normal", "normal", "serious"]),
            "summary": "等候时间过长",
            "received_by": "前台01",
            "phone": "13812348000",
        }
        b.emit(t, f"{root}/complaint", body)


def _doors(
    b: _Builder, root: str, start: float, end: float, people: list[tuple[float, int]]
) -> None:
    """Two door counters read out every few minutes; one may be reset mid-day."""
    rng = b.rng
    totals = {"d1": [rng.randint(0, 5000), rng.randint(0, 5000)], "d2": [0, 0]}
    moves = sorted(people)
    reset_at = rng.uniform(start, end) if rng.random() < 0.4 else math.inf
    i = 0
    t = start
    while t < end:
        while i < len(moves) and moves[i][0] <= t:
            door = "d1" if rng.random() < 0.6 else "d2"
            n = moves[i][1]
            if rng.random() > 0.05:  # counters miss people
                totals[door][0 if n > 0 else 1] += abs(n)
            i += 1
        if t >= reset_at:
            totals["d1"] = [0, 0]
            reset_at = math.inf
        for door, (tin, tout) in totals.items():
            b.emit(t, f"{root}/door/{door}", {"in_total": tin, "out_total": tout})
        t += rng.uniform(120, 420)


def _devices(b: _Builder, root: str, devices: dict[str, str], start: float, end: float) -> None:
    rng = b.rng
    off = (
        (rng.choice(list(devices)), rng.uniform(start, end - 3600)) if rng.random() < 0.3 else None
    )
    for dev, kind in devices.items():
        t = start
        while t < end:
            if off and off[0] == dev and off[1] <= t < off[1] + 1800:
                if t - off[1] < 600:
                    b.emit(t, f"{root}/device/{dev}", {"state": "offline", "kind": kind})
                t += 600
                continue
            b.emit(t, f"{root}/device/{dev}", {"state": "online", "kind": kind})
            t += rng.uniform(300, 600)


def _flood(b: _Builder, hall: str, day: date, limits: dict[str, int]) -> None:
    """One flood past a cap: tickets (issued or only cancelled), complaints, new names."""
    rng = b.rng
    root = f"hall/{hall}"
    t0 = _at(day, rng.uniform(9.5, 15.5) * 3600)
    kind = rng.randrange(7)
    cap = limits.get("tickets", 250)
    for i in range(cap + 40 if kind < 2 else 60):
        t = t0 + i * 0.05
        if kind == 0:
            b.emit(
                t, f"{root}/ticket", {"type": "issued", "ticket": f"F{i:05d}", "service": "提取"}
            )
        elif kind == 1:
            b.emit(t, f"{root}/ticket", {"type": "cancelled", "ticket": f"X{i:05d}"})
        elif kind == 2:
            body = {
                "complaint_id": f"flood-{i}",
                "channel": "online",
                "severity": "normal",
                "summary": "刷屏",
                "received_by": "bot",
            }
            b.emit(t, f"{root}/complaint", body)
        elif kind == 3:
            b.emit(t, f"{root}/window/fw{i}", {"state": "open", "services": [f"业务{i}"]})
        elif kind == 4:
            b.emit(t, f"{root}/device/fd{i}", {"state": "online", "kind": "other"})
        elif kind == 5:
            b.emit(t, f"{root}/door/fdoor{i % 12}", {"in_total": i * 1000, "out_total": 0})
            b.emit(t, f"hall/flood{i % 9}/system/s{i}", {"state": "down"})
        else:
            b.emit(t, f"{root}/system/fs{i}", {"state": "degraded", "detail": "x" * 3000})


def world(seed: int, limits: dict[str, int]) -> list[Step]:
    """The steps of seed `seed`'s world, in delivery order."""
    rng = random.Random(seed)
    chaos = Chaos(
        duplicate=rng.choice([0.0, 0.05, 0.2]),
        late=rng.choice([0.0, 0.005, 0.02]),
        stale=rng.choice([0.0, 0.002, 0.01]),
        future=rng.choice([0.0, 0.002, 0.01]),
        hostile=rng.choice([0.0, 0.005, 0.03]),
        floods=rng.choice([0, 0, 1, 2]),
    )
    b = _Builder(rng, chaos)
    days = _working_days(rng, rng.choice([2, 2, 3]))
    halls = ["h1", "h2"][: rng.choice([1, 1, 2])]
    for day in days:
        for hall in halls:
            _hall_day(b, hall, day, rng.choice([0.6, 1.0, 1.0, 2.0]))
    for _ in range(chaos.floods):
        _flood(b, rng.choice(halls), rng.choice(days), limits)
    msgs = sorted(b.msgs, key=lambda m: (m.deliver, m.order))
    steps: list[Step] = []
    last_tick = -1e18
    i = 0
    while i < len(msgs):
        size = rng.choice([1, 3, 10, 40, 120])
        batch = msgs[i : i + size]
        i += len(batch)
        now = batch[-1].deliver
        if steps and now - steps[-1].now > 1800:
            # A quiet stretch (the night): the daemon still ticks; sample it every half hour.
            t = steps[-1].now + 1800
            while t < now:
                steps.append(Step(t, [], True))
                last_tick = t
                t += rng.uniform(1800, 7200)
        # The daemon ticks every 2 s, and caches advice for a tick: never closer here.
        tick = rng.random() < 0.5 and now - last_tick >= 2.0
        last_tick = now if tick else last_tick
        steps.append(Step(now, [(m.topic, m.payload) for m in batch], tick))
    if steps:
        steps.append(Step(steps[-1].now + 60, [], True))  # a last tick: outputs compared
    return steps
