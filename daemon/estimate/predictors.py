"""The classic real-time delay predictors the estimator is measured against.

From Ibrahim & Whitt ("Real-time delay estimation in overloaded multiserver queues with
abandonments") and the queue-mining literature (Senderovich et al.):

- QL: queue-length based, (n + 1) / (s mu), n tickets ahead, s windows serving the service;
- QL-A: its abandonment-aware form for M/M/s+M, sum_{i=0..n} 1 / (s mu + i theta);
- LES: the wait of the last ticket of the same service (and class) to enter service;
- HOL: the time the head of the line of the same service (and class) has waited so far.

They read the same live state as the estimator and the same learned mean service times (passed
in), so the comparison is about the method, not the data. Each gets the one refinement any
deployment would add: a ticket that finds an idle open window serving its service with nobody
ahead is predicted to wait 0. All return None when no open window serves the service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hallwatch.daemon.core.state import CALLED, COMPLETED, NO_SHOW, WAITING, Day, Hall, HallsState
from hallwatch.sensors.events import PRIORITY_RANK

NAMES = ("ql", "ql_ab", "les", "hol")


@dataclass(frozen=True, slots=True)
class Classic:
    ql: float | None
    ql_ab: float | None
    les: float | None
    hol: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"ql": self.ql, "ql_ab": self.ql_ab, "les": self.les, "hol": self.hol}


_NONE = Classic(None, None, None, None)


def abandonment_rate(day: Day, now: float) -> float:
    """Tickets given up (cancelled or no-show) per second of waiting exposure, today."""
    exposure = day.wait_total_s
    for t in day.tickets.values():
        if t.status == WAITING and t.issued_at is not None:
            exposure += max(0.0, now - t.issued_at)
    gave_up = day.cancelled + day.no_show
    return gave_up / exposure if exposure > 0 and gave_up else 0.0


def ql(n_ahead: int, servers: int, mean_service_s: float) -> float:
    """Queue-length predictor (n + 1) / (s mu)."""
    return (n_ahead + 1) * mean_service_s / servers


def ql_abandon(n_ahead: int, servers: int, mean_service_s: float, theta: float) -> float:
    """Abandonment-aware queue-length predictor: each one ahead may leave at rate theta."""
    rate = servers / mean_service_s
    return sum(1.0 / (rate + i * theta) for i in range(n_ahead + 1))


def classic(
    state: HallsState,
    hall_name: str,
    ticket: str,
    now: float,
    *,
    mean_service_s: Callable[[str], float],
) -> Classic:
    """All four baselines for a waiting `ticket` at time `now`."""
    hall = state.halls.get(hall_name)
    day = hall.today if hall else None
    if hall is None or day is None or ticket not in day.tickets:
        return _NONE
    me = day.tickets[ticket]
    service = me.service
    if service is None or me.status != WAITING:
        return _NONE
    servers, idle = _windows(hall, service)
    if servers == 0:
        return _NONE
    rank = PRIORITY_RANK.get(me.priority, 2)
    mine = (rank, me.issued_at if me.issued_at is not None else now)
    n = 0
    head: float | None = None
    for k, t in day.tickets.items():
        if k == ticket or t.status != WAITING or t.service != service:
            continue
        key = (PRIORITY_RANK.get(t.priority, 2), t.issued_at if t.issued_at is not None else now)
        if key < mine:
            n += 1
            if key[0] == rank and (head is None or key[1] < head):
                head = key[1]
    mean = mean_service_s(service)
    if n < idle:
        return Classic(0.0, 0.0, 0.0, 0.0)
    theta = abandonment_rate(day, now)
    hol = max(0.0, now - head) if head is not None else 0.0
    return Classic(
        ql(n, servers, mean),
        ql_abandon(n, servers, mean, theta),
        last_to_enter_service(day, service, me.priority, now),
        hol,
    )


def last_to_enter_service(day: Day, service: str, priority: str, now: float) -> float:
    """Wait of the ticket of this service and class called most recently (any class if none;
    0 before anyone of the service was called today)."""
    best: tuple[float, float] | None = None
    best_any: tuple[float, float] | None = None
    for t in day.tickets.values():
        if t.service != service or t.status not in (CALLED, COMPLETED, NO_SHOW):
            continue
        if t.called_at is None or t.issued_at is None or t.called_at > now:
            continue
        item = (t.called_at, t.called_at - t.issued_at)
        if best_any is None or item > best_any:
            best_any = item
        if t.priority == priority and (best is None or item > best):
            best = item
    chosen = best or best_any
    return max(0.0, chosen[1]) if chosen else 0.0


def _windows(hall: Hall, service: str) -> tuple[int, int]:
    """(open windows serving the service, how many of them are serving nobody)."""
    servers = idle = 0
    for w in hall.windows.values():
        if w.state == "open" and service in w.services:
            servers += 1
            idle += w.serving is None
    return servers, idle
