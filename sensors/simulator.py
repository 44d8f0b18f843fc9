"""Discrete-event simulation of a service hall's day, as the MQTT messages its devices publish.

`simulate_day(profile, seed)` runs the hall (arrivals, queue, windows, doors, devices, systems,
complaints) and returns a `Day`: the messages in the contract's shape, sorted by event time, and
the ground truth per ticket visit so tests and benchmarks can score the daemon against reality.
The same profile and seed always give the same day, byte for byte.

Files: `write_day(day, path)` writes the contract's recorded-day JSON Lines to `path`, and the
truth to `truth_path(path)`, which is `path.with_suffix(".truth.jsonl")` ("day.jsonl" gives
"day.truth.jsonl"). `publish_live` replays a day to a broker, paced or as fast as possible.

Run it: `python -m sensors.simulator peak --seed 7 --out peak.jsonl` or
`python -m sensors.simulator normal --live localhost:1884 --speed 60`.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from pathlib import Path

from hallwatch.sensors.profiles import PROFILES, Profile
from hallwatch.sensors.sim_day import (
    CST,
    DISPLAY,
    FRONT_DESK,
    PRIORITY_RANK,
    TICKET_MACHINE,
    Day,
    Outcome,
    SimMessage,
    TicketTruth,
    epoch,
    ts_text,
)
from hallwatch.sensors.sim_devices import (
    complaint_messages,
    device_messages,
    door_messages,
    system_messages,
)
from hallwatch.sensors.sim_hall import Hall
from hallwatch.sensors.sim_io import publish_live, truth_path, write_day

__all__ = [
    "CST",
    "DISPLAY",
    "FRONT_DESK",
    "PRIORITY_RANK",
    "TICKET_MACHINE",
    "Day",
    "DaySummary",
    "Outcome",
    "SimMessage",
    "TicketTruth",
    "epoch",
    "main",
    "publish_live",
    "simulate_day",
    "summarize",
    "truth_path",
    "write_day",
]


def simulate_day(
    profile: Profile, seed: int, root: str = "hall", hall_class: type[Hall] = Hall
) -> Day:
    """Simulate one business day; deterministic in (profile, seed, root, hall_class)."""
    hall = hall_class(profile, seed)
    hall.run()
    assert hall.closed_at is not None
    day_end = max(hall.closed_at, profile.close_at) + profile.power_on_lead_s
    door_messages(hall)
    device_messages(hall, day_end)
    system_messages(hall)
    complaint_messages(hall)

    def at(t: float) -> float:
        return epoch(profile, t)

    seqs: dict[str, int] = {}
    messages: list[SimMessage] = []
    # Sorting on the rounded time keeps `at` and the millisecond `ts` in the same order.
    for t, _, device, suffix, body, retain in sorted(hall.raw, key=lambda r: (at(r[0]), r[1])):
        seqs[device] = seq = seqs.get(device, 0) + 1
        when = at(t)
        # Device counters do not restart at midnight, so ids stay unique across days.
        payload = {"id": f"{device}:{profile.date:%Y%m%d}{seq:06d}", "ts": ts_text(when), **body}
        messages.append(SimMessage(when, f"{root}/{profile.hall}/{suffix}", payload, retain))

    def maybe(t: float | None) -> float | None:
        return None if t is None else at(t)

    truth = [
        TicketTruth(
            profile.hall,
            v.ticket,
            v.spec.name,
            v.priority,
            at(v.queued_at),
            maybe(v.called_at),
            v.window,
            v.outcome,
            v.abandoned,
            maybe(v.completed_at),
            maybe(v.left_at),
            v.leg,
        )
        for v in hall.visits
    ]
    return Day(profile, seed, root, messages, truth)


# -- files, live publishing, summary ---------------------------------------------------------


@dataclass(frozen=True)
class DaySummary:
    arrivals: int  # first tickets issued
    green_share: float
    appointment_share: float
    max_waiting: int  # most tickets in the queue at once
    max_wait_s: float  # longest issue/transfer -> call
    completed: int
    no_shows: int
    cancelled: int
    transfers: int
    last_close: float  # epoch seconds the last window closed
    emergency_opened: int  # times the emergency window opened


def summarize(day: Day) -> DaySummary:
    """Headline figures of a simulated day, from its truth and messages."""
    first = [t for t in day.truth if t.leg == 0]
    n = max(len(first), 1)
    steps: list[tuple[float, int]] = []
    waits: list[float] = []
    for t in day.truth:
        steps.append((t.issued_at, 1))
        end = t.called_at if t.called_at is not None else t.left_at
        if end is not None:
            steps.append((end, -1))
            waits.append(end - t.issued_at if t.called_at is not None else 0.0)
    level = peak = 0
    for _, delta in sorted(steps):  # at equal times, leaving (-1) counts before joining
        level += delta
        peak = max(peak, level)
    windows = [m for m in day.messages if "/window/" in m.topic]
    return DaySummary(
        arrivals=len(first),
        green_share=sum(t.priority == "green" for t in first) / n,
        appointment_share=sum(t.priority == "appointment" for t in first) / n,
        max_waiting=peak,
        max_wait_s=max(waits, default=0.0),
        completed=sum(t.outcome == "completed" for t in day.truth),
        no_shows=sum(t.outcome == "no_show" for t in day.truth),
        cancelled=sum(t.outcome == "cancelled" for t in day.truth),
        transfers=sum(t.leg > 0 for t in day.truth),
        last_close=max((m.at for m in windows if m.payload["state"] == "closed"), default=0.0),
        emergency_opened=sum(
            m.payload["emergency"] and m.payload["state"] == "open" for m in windows
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Simulate a service hall's day.")
    parser.add_argument("profile", choices=sorted(PROFILES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--root", default="hall")
    parser.add_argument("--out", type=Path, help="write the recorded day (and its .truth.jsonl)")
    parser.add_argument("--live", metavar="HOST:PORT", help="publish to this MQTT broker")
    parser.add_argument("--speed", type=float, default=None, help="x real time; omit: at once")
    args = parser.parse_args(argv)
    day = simulate_day(PROFILES[args.profile], args.seed, args.root)
    if args.out:
        write_day(day, args.out)
    if args.live:
        host, _, port = args.live.rpartition(":")
        sent = asyncio.run(
            publish_live(
                day,
                host=host,
                port=int(port),
                speed=args.speed,
                on_progress=lambda at, n: print(f"{ts_text(at)} {n} sent", flush=True),
            )
        )
        print(f"published {sent} messages")
    print(summarize(day))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
