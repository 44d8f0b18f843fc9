"""The rest of the simulated hall beside the queue: door counters, device heartbeats and
outages, upstream systems, complaints typed in at the front desk."""

from __future__ import annotations

import math
import random
from typing import Any

from hallwatch.sensors.sim_day import DISPLAY, FRONT_DESK, TICKET_MACHINE
from hallwatch.sensors.sim_hall import Hall, within


def door_messages(hall: Hall) -> None:
    p = hall.p
    for door in p.doors:
        device = f"dc-{door}"
        items = [(t, 1, i, o) for t, d, i, o in hall.crossings if d == door]
        if p.counter_reset and p.counter_reset[0] == door:
            items.append((float(p.counter_reset[1]), 0, 0, 0))
        items.sort()
        start = p.open_at - p.power_on_lead_s + 1.0
        pubs: list[tuple[float, int, int]] = [(start, 0, 0)]  # counters restart every night
        n_in_total = n_out_total = 0
        due: float | None = None
        for t, kind, n_in, n_out in items:
            if due is not None and t >= due:
                pubs.append((due, n_in_total, n_out_total))
                due = None
            if kind == 0:  # reset: flush what was counted before it, then the new baseline
                if due is not None:
                    pubs.append((t - 0.001, n_in_total, n_out_total))
                    due = None
                n_in_total = n_out_total = 0
                pubs.append((t, 0, 0))
                continue
            n_in_total += n_in
            n_out_total += n_out
            if due is None:
                due = (math.floor(t / p.door_batch_s) + 1) * p.door_batch_s
        if due is not None:
            pubs.append((due, n_in_total, n_out_total))
        outage = p.device_outage if p.device_outage and p.device_outage.target == device else None
        if outage:
            # Offline, the counter keeps counting and publishes its totals when it reconnects.
            end = outage.start + outage.duration_s
            held = [pub for pub in pubs if within(outage, pub[0])]
            pubs = [pub for pub in pubs if not within(outage, pub[0])]
            if held:
                pubs.append((end + 1.0, held[-1][1], held[-1][2]))
        for t, n_in, n_out in pubs:
            hall.emit(t, device, f"door/{door}", {"in_total": n_in, "out_total": n_out})


def device_messages(hall: Hall, day_end: float) -> None:
    p = hall.p
    rng = random.Random(f"hallwatch:{hall.seed}:devices")
    devices = [(TICKET_MACHINE, "ticket_machine")]
    devices += [(f"dc-{d}", "door_counter") for d in p.doors]
    devices += [
        (w.terminal, "window_terminal")
        for w in [*hall.windows, *([hall.emergency] if hall.emergency else [])]
    ]
    devices.append((DISPLAY, "display"))
    outage = p.device_outage
    kinds = dict(devices)
    if outage and kinds.get(outage.target) not in ("door_counter", "display"):
        # Ticket and window events drive the ground truth; losing them is not modelled.
        raise ValueError(f"device_outage.target: {outage.target} is not a door counter or display")
    start = p.open_at - p.power_on_lead_s
    for device, kind in devices:
        body = {"state": "online", "kind": kind}
        down = outage if outage and outage.target == device else None
        t = start + rng.uniform(0.0, 1.0)  # connect: the first retained "online"
        while t < day_end:
            if down and down.start <= t:
                # The broker publishes the last will; on reconnect the device says "online"
                # again and its heartbeat restarts from there.
                hall.emit(
                    down.start,
                    device,
                    f"device/{device}",
                    {"state": "offline", "kind": kind},
                    retain=True,
                )
                t = float(down.start + down.duration_s)
                down = None
            hall.emit(t, device, f"device/{device}", body, retain=True)
            t += p.heartbeat_s


def system_messages(hall: Hall) -> None:
    p = hall.p
    start = p.open_at - p.power_on_lead_s + 2.0
    for system in p.systems:
        hall.emit(start, f"sys-{system}", f"system/{system}", {"state": "up"})
        outage = p.system_outage
        if outage and outage.target == system:
            body: dict[str, Any] = {"state": "down"}
            if outage.detail:
                body["detail"] = outage.detail
            hall.emit(outage.start, f"sys-{system}", f"system/{system}", body)
            hall.emit(
                outage.start + outage.duration_s,
                f"sys-{system}",
                f"system/{system}",
                {"state": "up"},
            )


_SUMMARIES = (
    "等待时间过长",
    "窗口工作人员态度不好",
    "材料要求未一次性告知",
    "系统故障无法办理",
    "叫号顺序有疑问",
    "多跑了一趟",
)


def complaint_messages(hall: Hall) -> None:
    p = hall.p
    rng = random.Random(f"hallwatch:{hall.seed}:complaints")
    times = sorted(rng.uniform(p.open_at + 1800, p.close_at) for _ in range(p.complaints))
    for i, t in enumerate(times, start=1):
        body: dict[str, Any] = {
            "complaint_id": f"TS{p.date:%Y%m%d}{i:03d}",
            "channel": rng.choices(("visit", "phone", "letter", "online"), (6, 3, 1, 2))[0],
            "severity": "serious" if rng.random() < 0.2 else "normal",
            "summary": rng.choice(_SUMMARIES),
            "received_by": f"S{rng.randint(1, 40):03d}",
        }
        if rng.random() < 0.6:
            body["phone"] = f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
        hall.emit(t, FRONT_DESK, "complaint", body)
