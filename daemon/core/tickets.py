"""A ticket's state as a function of the SET of its events, not of their arrival order.

A ticket's lifecycle (issued, called, completed/no_show/cancelled, transferred, ...) is the fold
of its events sorted by event time (`fold`), with the same transitions the daemon always used:
a call takes a waiting ticket, an end finishes a waiting or called one, a cancel only a waiting
one, a transfer re-queues anything not cancelled. Any arrival order of the same events gives the
same ticket, and the day's counters are sums over the tickets, so they agree too.

Memory: a ticket whose events its fields already say (one `issued`, one `called`, one end, each
taking effect: nearly every ticket of a day) keeps no event list; only the others (transfers,
a late event that was ignored in time order, a second `issued`) keep theirs in `Ticket.log`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

WAITING, CALLED, COMPLETED, NO_SHOW, CANCELLED = (
    "waiting",
    "called",
    "completed",
    "no_show",
    "cancelled",
)
_DONE = (COMPLETED, NO_SHOW, CANCELLED)

# An event of a ticket: (ts, kind, arg, priority); arg is the service (issued, transferred) or
# the window (called, completed, no_show), "" if none. `kind` orders the events of one instant as
# they follow each other: issued, then an end, then the transfer after it, then the call (of the
# ticket just issued or transferred: an idle window calls it at once; seen in simulated days).
Mark = tuple[float, int, str, str]
ISSUED, COMPLETE, NOSHOW, TRANSFER, CALL, CANCEL = range(6)
KINDS = {
    "issued": ISSUED,
    "called": CALL,
    "completed": COMPLETE,
    "no_show": NOSHOW,
    "cancelled": CANCEL,
    "transferred": TRANSFER,
}
_END_KIND = {COMPLETED: COMPLETE, NO_SHOW: NOSHOW, CANCELLED: CANCEL}


class Ticket(msgspec.Struct, array_like=True):
    service: str | None
    priority: str
    issued_at: float | None  # when it (re-)entered the queue; None if `issued` never arrived
    status: str
    window: str | None = None
    called_at: float | None = None
    first_issued_at: float | None = None
    ended_at: float | None = None  # when its end (completed, no_show, cancelled) took effect
    # Its events, sorted, when its fields cannot say them (see the module's doc); else None.
    log: list[tuple[float, int, str, str]] | None = None


@dataclass
class Fold:
    """A ticket's fields and what it adds to the day's counters."""

    ticket: Ticket
    issued: int = 0
    called: int = 0
    completed: int = 0
    no_show: int = 0
    cancelled: int = 0
    transferred: int = 0
    wait_us: int = 0  # integer microseconds, so the day's sum is exact in any order
    calls: list[tuple[float, str]] = field(default_factory=list)  # calls that took effect


def mark(kind: str, ts: float, service: str | None, window: str | None, priority: str) -> Mark:
    k = KINDS[kind]
    if k == ISSUED:
        return (ts, k, service or "", priority)
    if k == TRANSFER:
        return (ts, k, service or "", "")
    if k == CANCEL:
        return (ts, k, "", "")
    return (ts, k, window or "", "")


def marks(t: Ticket) -> list[Mark]:
    """The ticket's events, sorted."""
    if t.log is not None:
        return t.log
    out: list[Mark] = []
    if t.first_issued_at is not None:
        out.append((t.first_issued_at, ISSUED, t.service or "", t.priority))
    if t.called_at is not None:
        out.append((t.called_at, CALL, t.window or "", ""))
    if t.ended_at is not None:
        k = _END_KIND[t.status]
        out.append((t.ended_at, k, "" if k == CANCEL else (t.window or ""), ""))
    out.sort()
    return out


def fold(events: list[Mark]) -> Fold:
    """The ticket that `events` (sorted) make, and its share of the day's counters."""
    t = Ticket(None, "normal", None, WAITING)
    f = Fold(t)
    for ts, k, arg, prio in events:
        if k == ISSUED:
            if t.first_issued_at is None:
                t.service = t.service or arg or None
                t.priority = prio
                if t.issued_at is None:
                    t.issued_at = ts
                    if t.called_at is not None:  # its call was counted without a wait
                        f.wait_us += _us(t.called_at - ts)
                t.first_issued_at = ts
                f.issued += 1
        elif k == CALL:
            _call(t, f, ts, arg)
        elif k == COMPLETE or k == NOSHOW:
            if t.status == WAITING or t.status == CALLED:
                if k == COMPLETE:
                    t.status, f.completed = COMPLETED, f.completed + 1
                else:
                    t.status, f.no_show = NO_SHOW, f.no_show + 1
                t.ended_at = ts
        elif k == CANCEL:
            if t.status == WAITING:
                t.status, t.ended_at = CANCELLED, ts
                f.cancelled += 1
        elif t.status != CANCELLED:  # TRANSFER
            t.service, t.status, t.issued_at = arg or None, WAITING, ts
            t.window = t.called_at = t.ended_at = None
            f.transferred += 1
    if marks(t) != events:
        t.log = list(events)
    return f


def _call(t: Ticket, f: Fold, ts: float, window: str) -> None:
    if t.status == WAITING:
        t.status, t.window, t.called_at = CALLED, window or None, ts
        f.called += 1
        if t.issued_at is not None:
            f.wait_us += _us(ts - t.issued_at)
        if window:
            f.calls.append((ts, window))


def add(t: Ticket | None, m: Mark) -> tuple[Fold | None, Fold]:
    """The folds of the ticket before and after the event `m` joins its events."""
    if t is None:
        return None, fold([m])
    events = marks(t)
    before = fold(events)
    after = sorted([*events, m]) if events and m < events[-1] else [*events, m]
    return before, fold(after)


def _us(seconds: float) -> int:
    return round(max(0.0, seconds) * 1_000_000)
