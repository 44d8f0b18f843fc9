"""Queue-length estimates: what the estimator says when a forward simulation would cost too much.

The forward simulation in `daemon/estimate/model.py` costs time in proportion to the tickets it runs
(the queue, and the arrivals it expects until closing). Past `SIM_MAX_ITEMS` of them (a flood,
a hostile device, a backlog after a restart) the estimator answers with these closed forms
instead, so one tick or one estimate has a bounded cost and the daemon stays responsive. They are
the classic queue-length predictor: the tickets ahead, served in turn by the open windows that
serve the service, at the learned service cycle (service time plus the turnaround gap).
"""

from __future__ import annotations

import math

# Tickets (queued plus expected arrivals) beyond which a simulation is not run. A peak day in a
# real hall has a few hundred tickets all day; a forward simulation of 2,000 takes ~10 ms.
SIM_MAX_ITEMS = 2000


def queue_wait(ahead: int, windows: int, cycle_s: float) -> float | None:
    """Wait of a ticket with `ahead` tickets before it at `windows` windows (None: none open)."""
    if windows <= 0:
        return None
    return (ahead + 1) * cycle_s / windows


def extra_windows(ahead: int, windows: int, cycle_s: float, target_s: float, most: int) -> int:
    """How many windows to add so that `queue_wait` is within `target_s` (at most `most`)."""
    need = math.ceil((ahead + 1) * cycle_s / target_s) if target_s > 0 else most
    return max(0, min(most, need - windows))


def finish_at(now: float, work_s: float, windows: int) -> float | None:
    """When `work_s` seconds of service are done by `windows` windows (None: nothing to do or
    no window open)."""
    if work_s <= 0 or windows <= 0:
        return None
    return now + work_s / windows
