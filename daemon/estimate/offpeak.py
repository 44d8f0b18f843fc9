"""Off-peak guidance (错峰办理): average wait by weekday and hour, and the quietest coming slots.

Pure: history goes in as rows of (issued_at epoch seconds, wait seconds), or is accumulated in a
`WaitTable` one called ticket at a time; `now` is an argument. The output of `guidance` is plain
JSON-able data for the HTTP endpoint and the hall screen.

A slot is only ever one the hall is open for: a working day of the calendar, and an hour wholly
within the hall's `Hours`. A hall with no history of its own (a new hall) is not left with
nothing: `hall_guidance` falls back to the centre's other halls' history pooled (each hall
counted once, scaled to this hall's own level where it has a little), then to the typical day
(`TYPICAL_QUIET`), and says which (`source_text`).

The fallbacks also keep clear of the hall's lunch rotation (`Hours.lunch`): with windows away
at lunch the hall is short-handed, which the centre's history and the typical day know nothing
of, so their hour slots meeting a lunch slot are left out and the lunch stretches are cut out
of the typical day's. The hall's own history has measured its lunch-time waits already.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from hallwatch.daemon.core.hours import Hours, hhmm
from hallwatch.daemon.core.workdays import WorkCalendar

WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
#: The usual quiet stretches of a service hall's day (after the opening rush and before lunch;
#: mid-afternoon), for a hall and a centre with no history yet.
TYPICAL_QUIET = ((time(10, 0), time(11, 0)), (time(14, 30), time(16, 0)))
#: Where the figures come from, as the API and the screen say it.
SOURCES = {"own": "本厅历史", "centre": "参考全中心历史", "typical": "参考一般规律"}
HINT = "建议错峰办理：以下时段历史平均等候时间最短"


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
    hours: Hours | None = None,
    lunch: bool = True,
) -> list[dict[str, Any]]:
    """The `top` quietest hour slots from now to `days` days ahead, by historical mean wait.

    Only slots with at least `min_samples` past waits count, so hours the hall is closed (no
    history) and thinly observed hours are never recommended, and with a `calendar` only its
    working days (never a public holiday such as 1 October, whatever weekday it falls on), with
    `hours` only hours wholly within the hall's opening hours (with `lunch` False, also none
    meeting its lunch rotation). Ties go to the sooner slot.
    """
    zone = ZoneInfo(tz)
    start = datetime.fromtimestamp(now, zone).replace(minute=0, second=0, microsecond=0)
    found: list[tuple[float, int, dict[str, Any]]] = []
    for k in range(1, days * 24 + 1):
        slot = start + timedelta(hours=k)
        if calendar is not None and not calendar.is_working_day(slot.date()):
            continue
        if hours is not None and not _within(hours, slot.hour, lunch=lunch):
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
    hours: Hours | None = None,
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
            table,
            now,
            tz=tz,
            days=days,
            top=top,
            min_samples=min_samples,
            calendar=calendar,
            hours=hours,
        ),
        "hint": HINT,
    }


def _within(hours: Hours, hour: int, *, lunch: bool = True) -> bool:
    """The hour slot `hour`:00 to `hour + 1`:00 lies wholly within the opening hours (and,
    with `lunch` False, meets no lunch slot of the rotation)."""
    start, end = hour * 60, (hour + 1) * 60
    if not lunch and any(_minutes(x.start) < end and start < _minutes(x.end) for x in hours.lunch):
        return False
    return _minutes(hours.open) <= start and end <= _minutes(hours.close)


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def pooled(tables: Iterable[WaitTable], like: WaitTable | None = None) -> WaitTable:
    """Other halls' tables as one: per slot the mean of their means (each hall counts once,
    however busy it is), with their samples summed. With `like` (a hall's own thin history),
    scaled by its overall mean wait over the pooled mean of the same slots."""
    means: list[list[float]] = [[] for _ in range(7 * 24)]
    out = WaitTable()
    for t in tables:
        for i, n in enumerate(t.counts):
            if n:
                means[i].append(t.sums[i] / n)
                out.counts[i] += n
    for i, ms in enumerate(means):
        if ms:
            out.sums[i] = sum(ms) / len(ms) * out.counts[i]
    scale = _scale(like, out) if like is not None else 1.0
    out.sums = [s * scale for s in out.sums]
    return out


def _scale(own: WaitTable, pool: WaitTable) -> float:
    """Own mean wait over the pool's mean of the slots `own` has: 1 without any overlap."""
    own_sum = own_n = pool_sum = 0.0
    for i, n in enumerate(own.counts):
        if n and pool.counts[i]:
            own_sum, own_n = own_sum + own.sums[i], own_n + n
            pool_sum += pool.sums[i] / pool.counts[i] * n
    return own_sum / pool_sum if own_n and pool_sum > 0 else 1.0


def typical_slots(
    now: float,
    hours: Hours,
    *,
    tz: str = "Asia/Shanghai",
    days: int = 3,
    top: int = 5,
    calendar: WorkCalendar | None = None,
) -> list[dict[str, Any]]:
    """The typical day's quiet stretches (`TYPICAL_QUIET`) cut to the hall's hours, on the
    working days from now to `days` days ahead: the first `top` not yet begun."""
    zone = ZoneInfo(tz)
    today = datetime.fromtimestamp(now, zone).date()
    out: list[dict[str, Any]] = []
    for k in range(days + 1):
        day = today + timedelta(days=k)
        if calendar is not None and not calendar.is_working_day(day):
            continue
        for start, end in typical_windows(hours):
            begin = datetime.combine(day, start, zone)
            if begin.timestamp() < now:
                continue
            label = f"{WEEKDAYS_ZH[day.weekday()]} {hhmm(start)}-{hhmm(end)}"
            out.append(
                {
                    "date": day.isoformat(),
                    "weekday": day.weekday(),
                    "weekday_zh": WEEKDAYS_ZH[day.weekday()],
                    "start": hhmm(start),
                    "end": hhmm(end),
                    "label": label,
                    "source_text": SOURCES["typical"],
                }
            )
    return out[:top]


def typical_windows(hours: Hours) -> list[tuple[time, time]]:
    """`TYPICAL_QUIET` cut to the opening hours (a stretch outside them is dropped), the
    rotation's lunch slots cut out of them."""
    out: list[tuple[time, time]] = []
    for start, end in TYPICAL_QUIET:
        pieces = [(max(start, hours.open), min(end, hours.close))]
        for x in hours.lunch:
            pieces = [
                p
                for a, b in pieces
                for p in ((a, min(b, x.start)), (max(a, x.end), b))
                if p[0] < p[1]
            ]
        out.extend(p for p in pieces if p[0] < p[1])
    return out


def hall_guidance(
    own: WaitTable,
    others: Iterable[WaitTable],
    now: float,
    *,
    hours: Hours,
    tz: str = "Asia/Shanghai",
    days: int = 3,
    top: int = 5,
    min_samples: int = 3,
    calendar: WorkCalendar | None = None,
) -> dict[str, Any]:
    """`guidance` for one hall within its `hours`, never empty for want of history: its own
    quiet slots, else the centre's other halls' pooled (`pooled`), else the typical day's;
    `source` and `source_text` say which, each fallback slot carries its `source_text` too."""
    kw: dict[str, Any] = {"tz": tz, "days": days, "top": top, "calendar": calendar}
    body = guidance(own, now, min_samples=min_samples, hours=hours, **kw)
    slots: list[dict[str, Any]] = body["quiet_slots"]
    source, hint = "own", HINT
    if not slots:
        thin = own if sum(own.counts) >= min_samples else None
        pool = pooled(others, thin)
        slots = quiet_slots(pool, now, min_samples=min_samples, hours=hours, lunch=False, **kw)
        source, hint = "centre", "本厅历史数据不足，参考全中心历史：以下时段平均等候时间最短"
        for s in slots:
            s["source_text"] = SOURCES["centre"]
    if not slots:
        slots = typical_slots(now, hours, **kw)
        usual = "、".join(f"{hhmm(a)}–{hhmm(b)}" for a, b in typical_windows(hours))
        source = "typical"
        hint = f"本厅尚无历史数据，参考一般规律：通常 {usual} 人较少" if usual else ""
    body.update(
        quiet_slots=slots,
        source=source,
        source_text=SOURCES[source],
        hint=hint,
        hours={"open": hhmm(hours.open), "close": hhmm(hours.close)},
    )
    return body
