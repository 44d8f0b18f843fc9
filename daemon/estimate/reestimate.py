"""Re-estimates: a waiting ticket's estimate, published again when its forecast has moved.

A ticket's estimate is published once at issue (`Estimator._on_issued`). As the queue moves
(windows pause, a loan takes an hour, green-channel customers overtake) its expected call time
drifts. On a `called` event, at most once per `every_s` of event time per hall, one
*mean-value run* of the calling rules over the whole queue (every waiting ticket, and the
overtaking classes' expected arrivals; no sampling) gives each waiting ticket an expected call
time. A ticket's published call time (`at + estimated_wait_s` of its last message) is shifted by
how much that mean-value projection moved since the ticket's last message; when the shift is
more than `threshold_s` (and a quarter of the remaining wait), the ticket gets a new message on
the same estimate topic with `revision` 1, 2, ... and `estimated_wait_s` counted from the new
`at`.

Cost: one run over the queue per hall per `every_s` (the issued-ticket estimate runs 33 of
them); the per-ticket estimate path is unchanged. Tickets are tracked in memory only: after a
restart the tickets issued before it are not re-estimated.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from hallwatch.daemon.estimate.simulation import Handling, Item, Queues, Win, pick, queues_of


@dataclass(slots=True)
class Track:
    mean_call: float  # the mean-value run's call time when last published
    published_call: float  # at + estimated_wait_s of the last message
    below: float  # how far the last message's P10 / P90 lay from its estimate, in seconds
    above: float
    revision: int = 0


def call_times(wins: list[Win], items: list[Item], handling: Handling) -> dict[int, float]:
    """Each real item's call time (by `idx`) in one run of the calling rules (as
    `simulation.simulate`: class order, then FIFO, a window calls only its services)."""
    queues: Queues = queues_of(items)
    heap = [(w.free, i) for i, w in enumerate(wins)]
    heapq.heapify(heap)
    calls: dict[int, float] = {}
    left = sum(it.real for it in items)
    while heap and len(calls) < left:
        t, i = heapq.heappop(heap)
        got = pick(queues, wins[i].services, t)
        if not isinstance(got, tuple):
            if got is not None:
                heapq.heappush(heap, (max(got, t), i))
            continue
        best, best_q = got
        best_q.popleft()
        if best.real:
            calls[best.idx] = t
        dur = handling(best, t)
        heapq.heappush(heap, (t + (dur or 0.0), i))
    return calls


def moved(track: Track, mean_call: float, now: float, threshold_s: float) -> float | None:
    """The new remaining wait if the shifted call time moved more than `threshold_s`, or more
    than a quarter of the remaining wait last published (a long wait is less exact)."""
    shift = mean_call - track.mean_call
    if abs(shift) <= max(threshold_s, 0.25 * (track.published_call - now)):
        return None
    return max(0.0, track.published_call + shift - now)
