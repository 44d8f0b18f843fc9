"""Alert transitions of a recorded day: the rules run over hall views, nothing is sent.

`hallwatch replay DAY.jsonl --alerts-out alerts.jsonl` builds a view per hall at each step of
the replay and hands the sequence here; one JSON line is written per transition.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from hallwatch.alerts.rules import RuleEngine
from hallwatch.alerts.view import HallView, Transition
from hallwatch.daemon.config.alerts import RuleSettings

TRANSITIONS = ("firing", "escalated", "relapsed", "resolved")


def record(t: Transition, zone: ZoneInfo) -> dict[str, Any]:
    """{"at", "hall", "alert", "state", "level", "summary"} for one transition."""
    return {
        "at": datetime.fromtimestamp(t.at, zone).isoformat(timespec="seconds"),
        "hall": t.hall,
        "alert": t.alert if not t.subject else f"{t.alert}:{t.subject}",
        "state": t.state,
        "level": t.level,
        "summary": t.summary,
    }


def transitions(
    views: Iterable[HallView], settings: RuleSettings, *, repeats: bool = False
) -> Iterator[Transition]:
    """Transitions of a fresh engine fed `views` in order (repeats left out unless asked)."""
    engine = RuleEngine(settings)
    for view in views:
        for t in engine.evaluate(view):
            if repeats or t.state in TRANSITIONS:
                yield t


def write_jsonl(views: Iterable[HallView], settings: RuleSettings, out: TextIO) -> int:
    """Write one line per transition; returns the number of lines."""
    zone = ZoneInfo(settings.timezone)
    n = 0
    for t in transitions(views, settings):
        out.write(json.dumps(record(t, zone), ensure_ascii=False) + "\n")
        n += 1
    return n
