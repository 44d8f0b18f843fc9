"""Service windows, and which ticket each one serves.

A window serves the ticket of its newest call that took effect today, while that ticket is still
called there: the newest event decides, not the last to arrive, so a late older call of another
ticket does not take the window, nor its completion free it.
"""

from __future__ import annotations

import msgspec
from hallwatch.daemon.core.tickets import CALLED, Fold, Ticket, fold


class Window(msgspec.Struct):
    state: str = "closed"
    services: list[str] = msgspec.field(default_factory=list)
    emergency: bool = False
    since: float = 0.0
    serving: str | None = None  # ticket being served, if any
    serving_since: float | None = None
    # Today's newest call that took effect at this window: it serves that ticket while the
    # ticket stays called there (so the newest event, not the last to arrive, decides).
    last_call: float | None = None
    last_ticket: str | None = None


def serve(
    windows: dict[str, Window], tickets: dict[str, Ticket], ticket: str, before: Fold, after: Fold
) -> None:
    """Windows' `serving` after a ticket changed: each window serves the ticket of its newest
    call that took effect, while that ticket is still called there."""
    gone, came = set(before.calls) - set(after.calls), set(after.calls) - set(before.calls)
    touched = {w for _, w in gone | came}
    for w in (before.ticket.window, after.ticket.window):
        if w is not None:
            touched.add(w)
    for ts, w in sorted(came):
        win = windows.get(w)
        if win is None:
            continue
        if win.last_call is None or (ts, ticket) > (win.last_call, win.last_ticket or ""):
            win.last_call, win.last_ticket = ts, ticket
    for ts, w in gone:
        win = windows.get(w)
        if win is not None and (win.last_call, win.last_ticket) == (ts, ticket):
            win.last_call, win.last_ticket = _newest_call(tickets, w)
    for w in touched:
        win = windows.get(w)
        if win is None:
            continue
        t = tickets.get(win.last_ticket) if win.last_ticket is not None else None
        if t is not None and t.status == CALLED and t.window == w and t.called_at == win.last_call:
            win.serving, win.serving_since = win.last_ticket, win.last_call
        else:
            win.serving = win.serving_since = None


def _newest_call(tickets: dict[str, Ticket], window: str) -> tuple[float | None, str | None]:
    """The newest call that took effect at `window` today (a rare scan: the newest one of a
    ticket stopped taking effect, e.g. a late cancel older than it)."""
    best: tuple[float, str] | None = None
    for key, t in tickets.items():
        if t.log is None:
            calls = [(t.called_at, t.window)] if t.called_at is not None and t.window else []
        else:
            calls = fold(t.log).calls
        for ts, w in calls:
            if w == window and (best is None or (ts, key) > best):
                best = (ts, key)
    return (None, None) if best is None else best
