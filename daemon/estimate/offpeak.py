"""Off-peak guidance (错峰办理): average wait by weekday and hour, and the quietest coming slots.

Pure: history goes in as rows of (issued_at epoch seconds, wait seconds), or is accumulated in a
`WaitTable` one called ticket at a time; `now` is an argument. The output of `guidance` is plain
JSON-able data for the HTTP endpoint and the hall screen.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from hallwatch.daemon.core.workdays import WorkCalendar

WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


class WaitTable(msgspec.Struct):
    """Sums and counts of waits per (weekday 0=Monday, local hour of issue); persistable."""

    sums: list[float] = msgspec.field(default_factory=lambda: [0.0] * (7 * 24))
    counts: list[int] = msgspec.field(default_factory=lambda: [0] * (7 * 24))

    def add(self, issued_at: float, wait_s: float, tz: ZoneInfo) -> None:
        local = datetime.fromtimestamp(issued_at, tz)
        i = local.weekday() * 24 + local.hour
        self.sums[i] += max(0.0, wait_s)
        self.counts[i] += 1

    def mean(self, weekday: int, hour: int) -> float | None:
        i = weekday * 24 + hour
        return self.sums[i] / self.counts[i] if self.counts[i] else None

    def cells(self) -> Iterable[tuple[int, int, float, int]]:
        """(weekday, hour, mean wait, samples) of every slot with data."""
        for i, n in enumerate(self.counts):
            if n:
                yield i // 24, i % 24, self.sums[i] / n, n


def average_wait(rows: Iterable[tuple[float, float]], tz: str = "Asia/Shanghai") -> WaitTable:
    """Accumulate (issued_at, wait_s) rows into a weekday x hour table."""
    zone = ZoneInfo(tz)
    table = WaitTable()
    for issued_at, wait_s in rows:
        table.add(issued_at, wait_s, zone)
    return table


def quiet_slots(
    table: WaitTable,
    now: float,
    *,
    tz: str = "Asia/Shanghai",
    days: int = 3,
    top: int = 5,
    min_samples: int = 3,
    calendar: WorkCalendar | None = None,
) -> list[dict[str, Any]]:
    """The `top` quietest hour slots from now to `days` days ahead, by historical mean wait.

    Only slots with at least `min_samples` past waits count, so hours the hall is closed (no
    history) and thinly observed hours are never recommended, and with a `calendar` only its
    working days (never a public holiday such as 1 October, whatever weekday it falls on).
    Ties go to the sooner slot.
    """
    zone = ZoneInfo(tz)
    start = datetime.fromtimestamp(now, zone).replace(minute=0, second=0, microsecond=0)
    found: list[tuple[float, int, dict[str, Any]]] = []
    for k in range(1, days * 24 + 1):
        slot = start + timedelta(hours=k)
        if calendar is not None and not calendar.is_working_day(slot.date()):
            continue
        i = slot.weekday() * 24 + slot.hour
        n = table.counts[i]
        if n < min_samples:
            continue
        mean = table.sums[i] / n
        found.append(
            (
                mean,
                k,
                {
                    "date": slot.date().isoformat(),
                    "weekday": slot.weekday(),
                    "weekday_zh": WEEKDAYS_ZH[slot.weekday()],
                    "hour": slot.hour,
                    "label": _label(slot),
                    "avg_wait_s": round(mean, 1),
                    "samples": n,
                },
            )
        )
    found.sort(key=lambda f: (f[0], f[1]))
    return [f[2] for f in found[:top]]


def _label(slot: datetime) -> str:
    """ "周三 10:00-11:00": how the hall screen names an hour slot."""
    return f"{WEEKDAYS_ZH[slot.weekday()]} {slot.hour:02d}:00-{slot.hour + 1:02d}:00"


def guidance(
    table: WaitTable,
    now: float,
    *,
    tz: str = "Asia/Shanghai",
    days: int = 3,
    top: int = 5,
    min_samples: int = 3,
    calendar: WorkCalendar | None = None,
) -> dict[str, Any]:
    """The JSON body of the off-peak endpoint: the weekday x hour table and the quiet slots."""
    return {
        "generated_at": datetime.fromtimestamp(now, ZoneInfo(tz)).isoformat(timespec="seconds"),
        "by_weekday_hour": [
            {
                "weekday": wd,
                "weekday_zh": WEEKDAYS_ZH[wd],
                "hour": h,
                "avg_wait_s": round(m, 1),
                "samples": n,
            }
            for wd, h, m, n in table.cells()
        ],
        "quiet_slots": quiet_slots(
            table, now, tz=tz, days=days, top=top, min_samples=min_samples, calendar=calendar
        ),
        "hint": "建议错峰办理：以下时段历史平均等候时间最短",
    }
