"""Recorded days (JSON Lines, one MQTT message a line) and offline replay through the core.

The format is the contract's: `{"topic": "hall/h1/ticket", "payload": {...}}` in arrival order.
`replay` runs the same parser and state core as the daemon, with event time as the clock.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hallwatch.daemon.core.state import HallsState, waiting_counts
from hallwatch.sensors.events import Event, Rejection, TicketEvent
from hallwatch.sensors.parse import parse


def record_line(topic: str, payload: bytes) -> str:
    """One recorded line; a payload that is not a JSON object is kept as text, to be rejected."""
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        obj = None
    if isinstance(obj, dict):
        return json.dumps({"topic": topic, "payload": obj}, ensure_ascii=False)
    return json.dumps(
        {"topic": topic, "payload_text": payload.decode("utf-8", "replace")}, ensure_ascii=False
    )


def read_day(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """(topic, payload bytes) of each line of a recorded day."""
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
                topic = str(row["topic"])
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{path}:{n}: not a recorded-day line") from None
            if "payload" in row:
                yield topic, json.dumps(row["payload"], ensure_ascii=False).encode()
            else:
                yield topic, str(row.get("payload_text", "")).encode()


@dataclass
class ReplayResult:
    state: HallsState
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    first_ts: float | None = None
    last_ts: float | None = None
    peak_waiting: dict[str, tuple[int, float]] = field(default_factory=dict)
    waits: dict[str, list[float]] = field(default_factory=dict)


def unique_events(
    messages: Iterable[tuple[str, bytes]], root: str = "hall"
) -> Iterator[Event | Rejection | None]:
    """Parse recorded messages as the daemon does: an event, a Rejection, or None for a
    duplicate of an earlier (hall, id), the store's idempotency key."""
    seen: set[str] = set()
    for topic, payload in messages:
        event = parse(topic, payload, root)
        if isinstance(event, Rejection):
            yield event
            continue
        key = f"{event.hall}/{event.id}"
        if key in seen:
            yield None
            continue
        seen.add(key)
        yield event


def accepted_events(messages: Iterable[tuple[str, bytes]], root: str = "hall") -> Iterator[Event]:
    """Only the events the store would accept, in order."""
    for event in unique_events(messages, root):
        if event is not None and not isinstance(event, Rejection):
            yield event


def replay(
    messages: Iterator[tuple[str, bytes]], *, root: str = "hall", tz: str = "Asia/Shanghai"
) -> ReplayResult:
    """Drive the state core over recorded messages, de-duplicating by (hall, id) like the store."""
    result = ReplayResult(state=HallsState(tz=tz))
    for event in unique_events(messages, root):
        if isinstance(event, Rejection):
            result.rejected[event.reason.value] += 1
            continue
        if event is None:
            result.duplicates += 1
            continue
        result.accepted += 1
        result.first_ts = event.ts if result.first_ts is None else min(result.first_ts, event.ts)
        result.last_ts = event.ts if result.last_ts is None else max(result.last_ts, event.ts)
        result.state.apply(event)
        if isinstance(event, TicketEvent):
            day = result.state.halls[event.hall].today
            if day is None:
                continue
            if event.type == "called":
                t = day.tickets.get(event.ticket)
                if t is not None and t.called_at == event.ts and t.issued_at is not None:
                    result.waits.setdefault(event.hall, []).append(event.ts - t.issued_at)
            total = sum(waiting_counts(day).values())
            best = result.peak_waiting.get(event.hall, (0, 0.0))
            if total > best[0]:
                result.peak_waiting[event.hall] = (total, event.ts)
    return result


def summary(result: ReplayResult) -> dict[str, Any]:
    """Figures of a replay, per hall: what `hallwatch replay` prints."""
    halls: dict[str, Any] = {}
    st = result.state
    for name, hall in sorted(st.halls.items()):
        day = hall.today
        waits = sorted(result.waits.get(name, []))
        peak_w = result.peak_waiting.get(name, (0, 0.0))
        halls[name] = {
            "business_day": day.day.isoformat() if day else None,
            "tickets": {
                k: getattr(day, k) if day else 0
                for k in ("issued", "called", "completed", "no_show", "cancelled", "transferred")
            },
            "wait_s": {
                "mean": round(statistics.fmean(waits), 1) if waits else None,
                # nearest rank: the smallest wait with at least 90% of waits at or below it
                "p90": round(waits[math.ceil(0.9 * len(waits)) - 1], 1) if waits else None,
                "max": round(waits[-1], 1) if waits else None,
                "over_20min": sum(1 for w in waits if w >= 1200),
            },
            "peak_headcount": day.peak_occupancy if day else 0,
            "peak_headcount_at": _clock(st, day.peak_occupancy_at) if day else None,
            "peak_waiting": peak_w[0],
            "peak_waiting_at": _clock(st, peak_w[1]) if peak_w[0] else None,
            "headcount_end": day.occupancy if day else 0,
            "waiting_end": sum(waiting_counts(day).values()) if day else 0,
            "windows_open_end": sum(1 for w in hall.windows.values() if w.state == "open"),
            "devices_offline_end": sorted(
                d for d, dev in hall.devices.items() if dev.state != "online"
            ),
            "systems_end": {s: v.state for s, v in hall.systems.items()},
            "complaints": len(hall.complaints),
        }
    return {
        "events": {
            "accepted": result.accepted,
            "duplicate": result.duplicates,
            "rejected": sum(result.rejected.values()),
        },
        "rejected_by_reason": dict(sorted(result.rejected.items())),
        "from": _clock(st, result.first_ts),
        "to": _clock(st, result.last_ts),
        "halls": halls,
    }


def _clock(state: HallsState, ts: float | None) -> str | None:
    if ts is None:
        return None
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(ts, ZoneInfo(state.tz)).isoformat(timespec="seconds")
