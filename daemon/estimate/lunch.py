"""The windows' lunch turns (`[hours]` lunch rotation) as the forward simulation sees them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from hallwatch.daemon.core.hours import Lunch
from hallwatch.daemon.estimate.simulation import Win


def day_turns(
    slots: Iterable[Lunch], day: date, zone: ZoneInfo
) -> dict[str, tuple[tuple[float, float], ...]]:
    """Each window's turns on `day` as [start, end) epoch seconds, sorted, overlaps merged."""
    raw: dict[str, list[tuple[float, float]]] = {}
    for slot in slots:
        start = datetime.combine(day, slot.start, zone).timestamp()
        end = datetime.combine(day, slot.end, zone).timestamp()
        if end > start:
            raw.setdefault(slot.window, []).append((start, end))
    out: dict[str, tuple[tuple[float, float], ...]] = {}
    for window, spans in raw.items():
        merged: list[tuple[float, float]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        out[window] = tuple(merged)
    return out


def waits_out_a_turn(wins: list[Win], service: str, call: float) -> bool:
    """Whether a window serving `service` is away for lunch (`Win.away`) before `call`: the
    first-in-line bound (`clear_quantile`) leaves out the tickets that arrive and overtake
    meanwhile, a few seconds over a service's residual, a service or more over a lunch turn."""
    return any(a < call for w in wins if service in w.services for a, _ in w.away)
