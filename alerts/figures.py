"""The figures of a hall view that the rules compare and the messages quote: the longest
forecast and endured waits, the crossings of a wait mark, the estimates a device that is down
makes unreliable. Pure functions of a view (alerts/rules.py uses them)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from hallwatch.alerts.view import Crossing, Figures, HallView

# Which estimates a device feeds: a door counter the headcount, the others the wait estimates.
_FEEDS = {
    "door_counter": "headcount",
    "ticket_machine": "wait",
    "window_terminal": "wait",
}


def unreliable(view: HallView) -> tuple[str, ...]:
    """The estimates ("headcount", "wait") that depend on a device that is down right now."""
    out = {_FEEDS[d.kind] for d in view.devices if not d.up and d.kind in _FEEDS}
    return tuple(sorted(out))


def largest(waits: Iterable[tuple[str, float | None]]) -> tuple[float | None, str | None]:
    best: tuple[float | None, str | None] = (None, None)
    for service, wait in sorted(waits):
        if wait is not None and (best[0] is None or wait > best[0]):
            best = (wait, service)
    return best


def max_wait(view: HallView) -> tuple[float | None, str | None]:
    """The longest forecast for a new ticket, and its service."""
    return largest(view.est_wait_s_by_service.items())


def max_endured(view: HallView) -> tuple[float | None, str | None]:
    """The longest wait already endured by anyone still waiting, and its service."""
    return largest(view.endured_s_by_service.items())


def wait_crossings(view: HallView, threshold_s: float) -> list[Crossing]:
    """Per service, the forecast and the endured wait at or over `threshold_s`."""
    out = []
    for service, wait in sorted(view.est_wait_s_by_service.items()):
        if wait is not None and wait >= threshold_s:
            out.append(Crossing("wait", wait, threshold_s, service))
    for service, waited in sorted(view.endured_s_by_service.items()):
        if waited >= threshold_s:
            out.append(Crossing("endured", waited, threshold_s, service))
    return out


def figures(view: HallView, crossed: Iterable[Crossing] = ()) -> Figures:
    """The numbers of a view that messages quote."""
    wait, service = max_wait(view)
    endured, endured_service = max_endured(view)
    return Figures(
        headcount=view.headcount,
        max_wait_s=wait,
        max_wait_service=service,
        max_endured_s=endured,
        max_endured_service=endured_service,
        waiting_total=sum(view.waiting_by_service.values()),
        windows_open=view.windows_open,
        emergency_windows_open=view.emergency_windows_open,
        extra_windows_by_service=tuple(
            sorted((s, n) for s, n in view.extra_windows_by_service.items() if n > 0)
        ),
        closing_overrun_s=view.closing_overrun_s,
        spare_windows=view.spare_windows,
        all_open_overrun_s=view.all_open_overrun_s,
        unreliable=unreliable(view),
        crossed=tuple(crossed),
    )


def with_outage(figs: Figures, outage: Iterable[str]) -> Figures:
    """A peak that began or grew while an information system was down is marked as such."""
    outage = tuple(outage)
    return replace(figs, caused_by_outage=outage) if outage else figs
