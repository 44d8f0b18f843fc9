"""The forward simulation of the calling rules: queue items, windows, sampled and exact runs."""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from hallwatch.daemon.estimate.lognormal import LogNormal


@dataclass(slots=True)
class Item:
    service: str
    rank: int
    issued_at: float
    age_now: float  # how long it has waited at the simulation start
    real: bool = True
    target: bool = False
    idx: int = 0  # index into a sample's random draws


@dataclass(slots=True)
class Win:
    name: str  # seeds its random draws, so opening another window leaves these unchanged
    # In a fixed order: when two services' first tickets were issued at the same instant, the
    # first service listed is called, the same in every process (a frozenset's order follows
    # the interpreter's hash seed, and estimates moved by a place between runs).
    services: tuple[str, ...]
    free: float  # expected time of its next call
    # When serving: the current customer's service law and how long they have been served;
    # when paused: the pause law and how long the window has been paused.
    law: LogNormal | None = None
    served: float = 0.0
    p_recall: float = 0.0  # probability the current call is a no-show being recalled
    recall_left: float = 0.0
    gap: float = 0.0  # between the end of `law` and the next call
    # The hall's lunch rotation (`[hours]`) for this window: [start, end) intervals, sorted and
    # disjoint, in which it calls nobody (it finishes the customer it serves, then waits).
    away: tuple[tuple[float, float], ...] = ()


def back_at(w: Win, t: float) -> float:
    """When window `w`, free at `t`, can call: `t`, or the end of the lunch turn `t` falls in."""
    for start, end in w.away:
        if start <= t < end:
            t = end
    return t


Handling = Callable[[Item, float], float | None]


def uniform(key: str) -> float:
    """A deterministic uniform in [0, 1) for `key` (common random numbers across scenarios);
    a keyed hash is ~10x cheaper than seeding a `random.Random` for a single draw."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def survival(w: Win, t: float) -> float:
    """P(window `w` makes its next call more than `t` seconds from now)."""
    for start, end in w.away:  # a call due in a lunch turn is made at its end
        if start <= t < end:
            t = start - 1e-6  # P(next call >= start)
            break
    if w.law is None:
        return 1.0 if t < w.free else 0.0
    x = t - w.gap
    if x <= 0.0:
        return 1.0
    law, a = w.law, w.served
    tail = law.survival(a)
    if tail < 1e-12:  # far in the tail: the residual is all but certain
        rest = 1.0 if x < law.residual(a) else 0.0
    else:
        rest = min(1.0, law.survival(a + x) / tail)
    if w.p_recall <= 0.0:
        return rest
    return w.p_recall * (1.0 if t < w.recall_left + w.gap else 0.0) + (1.0 - w.p_recall) * rest


def clear_quantile(
    wins: list[Win], items: list[Item], target: Item, now: float, q: float
) -> tuple[float, bool] | None:
    """The q-quantile of the target's wait if it were called by the first *clear* window
    (serving its service, and with no queued ticket it would call first) to make its next
    call: the minimum of independent next-call times, whose survival is the product of
    theirs. Without overtaking arrivals that call is never later, so this bounds the wait;
    the flag says whether every window serving the service is clear (then it is the wait).
    None: no clear window."""
    key = (target.rank, target.issued_at)
    ahead = [
        it.service for it in items if it.real and not it.target and (it.rank, it.issued_at) <= key
    ]
    clear, every = [], True
    for w in wins:
        if target.service not in w.services:
            continue
        if any(s in w.services for s in ahead):
            every = False
        else:
            clear.append(
                Win(
                    w.name,
                    w.services,
                    w.free - now,
                    w.law,
                    w.served,
                    w.p_recall,
                    w.recall_left,
                    w.gap,
                    tuple((a - now, b - now) for a, b in w.away),
                )
            )  # times from now
    if not clear:
        return None
    stop = 1.0 - q

    def surv(t: float) -> float:
        out = 1.0
        for w in clear:
            out *= survival(w, t)
            if out <= stop:
                break
        return out

    if surv(0.0) <= stop:
        return 0.0, every
    hi = max(60.0, min(w.free for w in clear))
    while surv(hi) > stop:
        hi *= 2.0
        if hi > 7 * 86400.0:
            return None
    lo = 0.0
    while hi - lo > 0.05:
        mid = 0.5 * (lo + hi)
        if surv(mid) > stop:
            lo = mid
        else:
            hi = mid
    return hi, every


def quantile_of(values: list[float], q: float) -> float:
    """The q-quantile of `values` by linear interpolation (q = 0.5: the median)."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    i = int(pos)
    return xs[i] if i + 1 >= len(xs) else xs[i] + (xs[i + 1] - xs[i]) * (pos - i)


def poisson_arrivals(
    rates: list[tuple[tuple[str, int], float]],
    now: float,
    horizon: float,
    seed: str,
    first_idx: int = 0,
) -> list[Item]:
    """One run's future tickets of each class, at its rate until `horizon`. Each class draws
    from a stream of its own (keyed by `seed` and the class), apart from the runs' service
    draws: a change in one class's rate moves neither the others' arrivals nor the services
    (common random numbers: opening a window for one service cannot reshuffle the draws of
    another's queue). So are their service draws: the k-th arrival of the c-th class of
    `rates` takes draw `first_idx + k * len(rates) + c`, whatever the other classes' counts."""
    out = []
    width = len(rates)
    for c, ((service, rank), rate) in enumerate(rates):
        if rate <= 0:
            continue
        rng = random.Random(f"{seed}:{service}:{rank}")
        t = now + rng.expovariate(rate)
        k = 0
        while t < horizon:
            out.append(Item(service, rank, t, 0.0, False, idx=first_idx + k * width + c))
            t += rng.expovariate(rate)
            k += 1
    return out


Queues = dict[tuple[str, int], deque[Item]]


def queues_of(items: list[Item]) -> Queues:
    """Each class's (service, rank) queue, in issue order (ties: in the order of `items`)."""
    queues: Queues = {}
    for it in sorted(items, key=lambda i: i.issued_at):
        queues.setdefault((it.service, it.rank), deque()).append(it)
    return queues


class Classes:
    """The queued tickets by class, sorted once for the many sampled runs of one estimate."""

    def __init__(self, items: list[Item], now: float) -> None:
        self.items = items
        self.base = {k: list(q) for k, q in queues_of(items).items()}
        # Arrivals come at `now` or later: when no queued ticket is stamped later, each class's
        # queue is its queued tickets, then its arrivals, as sorting them together would give.
        self.sorted_before = all(it.issued_at <= now for it in items)

    def with_arrivals(self, arrivals: list[Item]) -> Queues:
        """The queues of a run: the queued tickets and `arrivals` (each class's in time order,
        as `poisson_arrivals` makes them)."""
        if not self.sorted_before:
            return queues_of(self.items + arrivals)
        queues = {k: deque(v) for k, v in self.base.items()}
        for a in arrivals:
            q = queues.get((a.service, a.rank))
            if q is None:
                q = queues[(a.service, a.rank)] = deque()
            q.append(a)
        return queues


def run_to_target(
    frees: list[float], wins: list[Win], items: list[Item] | Queues, handling: Handling
) -> tuple[float | None, int]:
    """Run the calling rules until the target is called: (its call time, real tickets before).
    `items`: the tickets to run, or their queues by class (`Classes.with_arrivals`)."""
    result: list[float] = []
    queues = queues_of(items) if isinstance(items, list) else items
    position = simulate(frees, wins, queues, handling, stop_at_target=True, out=result)
    return (result[0] if result else None), position


def finish(wins: list[Win], items: list[Item], handling: Handling) -> float | None:
    """When the last of `items` a window can serve has been served (None: nothing to serve)."""
    if not items:
        return None
    result: list[float] = []
    queues = queues_of(items)
    simulate([w.free for w in wins], wins, queues, handling, stop_at_target=False, out=result)
    return max(result) if result else None


def pick(
    queues: Queues, services: tuple[str, ...], t: float
) -> tuple[Item, deque[Item]] | float | None:
    """What a window serving `services`, free at `t`, calls: the first in of the best class
    waiting, with its queue; else when the first ticket it could call arrives (None: none)."""
    best: Item | None = None
    best_q: deque[Item] | None = None
    for rank in range(3):
        for s in services:
            q = queues.get((s, rank))
            if q and q[0].issued_at <= t and (best is None or q[0].issued_at < best.issued_at):
                best, best_q = q[0], q
        if best is not None and best_q is not None:
            return best, best_q
    nxt = [q[0].issued_at for (s, _), q in queues.items() if q and s in services]
    return min(nxt) if nxt else None


def simulate(
    frees: list[float],
    wins: list[Win],
    queues: Queues,
    handling: Handling,
    *,
    stop_at_target: bool,
    out: list[float],
) -> int:
    """Windows call by the contract's rules from `queues` (emptied as they are called);
    `handling` gives each call's duration (None: the ticket was cancelled before its turn
    and the window calls the next one at once)."""
    heap = [(free, i) for i, free in enumerate(frees)]
    heapq.heapify(heap)
    position = 0
    ends: list[float] = []
    while heap:
        t, i = heapq.heappop(heap)
        if wins[i].away and (back := back_at(wins[i], t)) > t:
            heapq.heappush(heap, (back, i))  # at lunch: calls again when the turn ends
            continue
        got = pick(queues, wins[i].services, t)
        if not isinstance(got, tuple):
            if got is not None:
                heapq.heappush(heap, (max(got, t), i))
            continue
        best, best_q = got
        best_q.popleft()
        if best.target and stop_at_target:
            out.append(t)
            return position
        dur = handling(best, t)
        if dur is None:
            heapq.heappush(heap, (t, i))
            continue
        position += best.real
        if best.real:
            ends.append(t + dur)
        heapq.heappush(heap, (t + dur, i))
    if not stop_at_target:
        out.extend(ends)
    return position
