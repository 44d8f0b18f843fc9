"""Drill scenarios (plan 预案学习): the device traffic of a peak, an outage or complaints, for a
drill hall, as (seconds from the start, topic, payload) in real time. `hallwatch drill run` plays
them into a running daemon; the daemon marks everything a drill hall causes 【演练】 and routes it
to that hall's own roles only (alerts.drill).

Pure: no clock, no broker. Payloads follow the wire contract (docs/contract.md); the player adds
`id` and `ts` when it publishes.
"""

from __future__ import annotations

from typing import Any

Step = tuple[float, str, dict[str, Any]]
SCENARIOS = ("peak", "outage", "complaint")

_SERVICES = ("提取", "贷款")


def _opening(root: str, hall: str) -> list[Step]:
    """Two windows open and the devices say they are online."""
    base = f"{root}/{hall}"
    return [
        (0.0, f"{base}/window/w1", {"state": "open", "services": ["提取"]}),
        (0.0, f"{base}/window/w2", {"state": "open", "services": ["贷款"]}),
        (0.0, f"{base}/device/tm1", {"state": "online", "kind": "ticket_machine"}),
        (0.0, f"{base}/device/dc1", {"state": "online", "kind": "door_counter"}),
    ]


def _heartbeats(root: str, hall: str, minutes: float) -> list[Step]:
    base = f"{root}/{hall}"
    out: list[Step] = []
    t = 30.0
    while t < minutes * 60:
        out.append((t, f"{base}/device/tm1", {"state": "online", "kind": "ticket_machine"}))
        out.append((t, f"{base}/device/dc1", {"state": "online", "kind": "door_counter"}))
        t += 30.0
    return out


def peak(root: str, hall: str, *, people: int = 26, minutes: float = 20.0) -> list[Step]:
    """`people` arrive in the first three minutes and take tickets; the two windows call one
    every four minutes each, so the hall passes 20 people and the wait grows: the peak
    procedure must start (open emergency windows, steer people, green channel). In the last
    two minutes everyone still waiting is served and leaves, so the alert resolves."""
    base = f"{root}/{hall}"
    steps = _opening(root, hall)
    arrive = 180.0 / max(1, people)
    tickets = []
    for i in range(people):
        t = 5.0 + i * arrive
        service = _SERVICES[i % 3 == 2]  # two in three 提取
        ticket = f"D{i + 1:03d}"
        tickets.append((ticket, service))
        steps.append((t, f"{base}/door/dc1", {"in_total": i + 1, "out_total": 0}))
        priority = "green" if i % 9 == 4 else "normal"
        steps.append(
            (
                t + 1,
                f"{base}/ticket",
                {"type": "issued", "ticket": ticket, "service": service, "priority": priority},
            )
        )
    end = minutes * 60
    out_total = 0
    t = 240.0
    served = 0
    windows = {"提取": "w1", "贷款": "w2"}
    queue = list(tickets)
    while queue and t < end - 120:
        for service, window in windows.items():
            mine = next((q for q in queue if q[1] == service), None)
            if mine is None:
                continue
            queue.remove(mine)
            steps += _serve(base, mine[0], window, t)
            served += 1
            out_total += 1
            steps.append(
                (t + 200, f"{base}/door/dc1", {"in_total": people, "out_total": out_total})
            )
        t += 240.0
    for i, (ticket, service) in enumerate(queue):  # the end of the drill: the rest is served
        at = end - 110 + i * (100 / max(1, len(queue)))
        steps += _serve(base, ticket, windows[service], at)
        out_total += 1
        steps.append((at + 5, f"{base}/door/dc1", {"in_total": people, "out_total": out_total}))
    steps += _heartbeats(root, hall, minutes)
    return sorted(steps, key=lambda s: s[0])


def _serve(base: str, ticket: str, window: str, t: float) -> list[Step]:
    return [
        (t, f"{base}/ticket", {"type": "called", "ticket": ticket, "window": window}),
        (t + 3, f"{base}/ticket", {"type": "completed", "ticket": ticket, "window": window}),
    ]


def outage(root: str, hall: str, *, minutes: float = 35.0) -> list[Step]:
    """The core business system goes down for `minutes` (past the plan's half hour by default,
    so the alert escalates and the hall switches to call-back registration), then comes back."""
    base = f"{root}/{hall}"
    steps = _opening(root, hall)
    steps.append(
        (10.0, f"{base}/system/core", {"state": "down", "detail": "演练：核心业务系统中断"})
    )
    steps.append((10.0 + minutes * 60, f"{base}/system/core", {"state": "up"}))
    steps += _heartbeats(root, hall, minutes + 1)
    return sorted(steps, key=lambda s: s[0])


def complaint(root: str, hall: str) -> list[Step]:
    """A serious complaint (to the director's office at once) and a normal one (to the head),
    registered at the front desk; staff then take them through the procedure."""
    base = f"{root}/{hall}"
    return [
        (
            0.0,
            f"{base}/complaint",
            {
                "complaint_id": "DRILL-1",
                "channel": "visit",
                "severity": "serious",
                "summary": "演练：多次往返仍未办结",
                "received_by": "演练前台",
            },
        ),
        (
            5.0,
            f"{base}/complaint",
            {
                "complaint_id": "DRILL-2",
                "channel": "phone",
                "severity": "normal",
                "summary": "演练：叫号不清",
                "received_by": "演练前台",
            },
        ),
    ]


def scenario(name: str, root: str, hall: str, *, minutes: float | None = None) -> list[Step]:
    if name == "peak":
        return peak(root, hall, minutes=minutes or 20.0)
    if name == "outage":
        return outage(root, hall, minutes=minutes or 35.0)
    if name == "complaint":
        return complaint(root, hall)
    raise ValueError(f"unknown drill scenario {name!r} (one of {', '.join(SCENARIOS)})")
