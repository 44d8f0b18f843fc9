"""Headcount from door counters as a function of the day's readings, not of their arrival order.

Each door keeps today's readings (cumulative `in_total`/`out_total`) sorted by event time, packed
(24 bytes a reading), and the newest reading before today as the baseline of its first one. The
headcount is the fold of all doors' readings in event-time order: a door's traffic is the rise of
its totals since its previous reading, a total that goes down is a counter reset (a new baseline,
not negative traffic), and the count never goes below 0. A reading arriving late is put in its
place and the day folded again, so it is neither counted twice nor taken for a reset, and the
headcount and peak are what the readings in time order make.
"""

from __future__ import annotations

import struct
from bisect import insort

import msgspec

_READING = struct.Struct("<dII")  # ts, in_total, out_total (parse keeps totals <= 10**9)
Reading = tuple[float, int, int]


class Door(msgspec.Struct):
    base: tuple[float, int, int] | None = None  # newest reading before today's first one
    readings: bytearray = msgspec.field(default_factory=bytearray)  # today's, sorted
    resets: int = 0  # today's counter resets

    def today(self) -> list[Reading]:
        return list(_READING.iter_unpack(self.readings))

    def last(self) -> Reading | None:
        n = len(self.readings)
        return _READING.unpack_from(self.readings, n - _READING.size) if n else self.base

    def add(self, r: Reading) -> bool:
        """Put `r` among today's readings; whether it went after all of them (in order)."""
        n = len(self.readings)
        if not n or _READING.unpack_from(self.readings, n - _READING.size) <= r:
            self.readings += _READING.pack(*r)
            return True
        items = self.today()
        insort(items, r)
        self.readings = bytearray(b"".join(_READING.pack(*x) for x in items))
        return False

    def new_day(self) -> None:
        """Today's last reading becomes the baseline of the next day's first."""
        self.base, self.readings, self.resets = self.last(), bytearray(), 0


class Headcount(msgspec.Struct):
    """The day's headcount and its peak (what `Day` shows)."""

    occupancy: int = 0
    peak: int = 0
    peak_at: float | None = None


def step(h: Headcount, door: Door, prev: Reading | None, r: Reading) -> None:
    """Fold one reading of `door` (`prev`: its previous one, None for its first ever)."""
    if prev is None:
        return  # totals since a reset we never saw: a baseline, not people in the hall now
    d_in, d_out = r[1] - prev[1], r[2] - prev[2]
    if d_in < 0 or d_out < 0:
        door.resets += 1  # reset or replaced counter: a new baseline, not negative traffic
    h.occupancy = max(0, h.occupancy + max(d_in, 0) - max(d_out, 0))
    if h.occupancy > h.peak:
        h.peak, h.peak_at = h.occupancy, r[0]


def refold(doors: dict[str, Door]) -> Headcount:
    """The headcount that all doors' readings of today make, in event-time order."""
    merged: list[tuple[float, str, int, int]] = []
    prev: dict[str, Reading | None] = {}
    for name, door in doors.items():
        door.resets = 0
        prev[name] = door.base
        merged += [(ts, name, i, o) for ts, i, o in door.today()]
    merged.sort()
    h = Headcount()
    for ts, name, i, o in merged:
        r = (ts, i, o)
        step(h, doors[name], prev[name], r)
        prev[name] = r
    return h


def newest(doors: dict[str, Door]) -> float | None:
    """Event time of the newest reading of today at any door."""
    best: float | None = None
    for door in doors.values():
        if door.readings:
            ts = _READING.unpack_from(door.readings, len(door.readings) - _READING.size)[0]
            best = ts if best is None or ts > best else best
    return best
