"""Erlang C and Erlang A by stable recursions, and how many windows a target wait needs.

Everything here is pure arithmetic on rates in events per second. No factorials or powers are
formed: Erlang B comes from its ratio recursion, and the Erlang A tail is summed term by term,
so offered loads of hundreds of Erlangs stay finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Largest number of servers `servers_for_wait` will propose; beyond it the answer is "more".
MAX_SERVERS = 200


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of M/M/c/c with offered load `load` Erlangs (B(0) = 1)."""
    if servers < 0 or load < 0:
        raise ValueError(f"need servers >= 0 and load >= 0, got {servers}, {load}")
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits in M/M/c (1.0 when the load is not below c)."""
    if servers <= 0 or load >= servers:
        return 1.0
    if load <= 0:
        return 0.0
    b = erlang_b(servers, load)
    return servers * b / (servers - load * (1.0 - b))


def erlang_c_wait(servers: int, arrival_rate: float, mean_service_s: float) -> float:
    """Mean wait in queue of M/M/c in seconds; infinity when the queue is unstable."""
    load = arrival_rate * mean_service_s
    if servers <= 0 or load >= servers:
        return math.inf
    if load <= 0:
        return 0.0
    return erlang_c(servers, load) * mean_service_s / (servers - load)


@dataclass(frozen=True, slots=True)
class ErlangA:
    """Steady state of M/M/c+M: waiting probability, mean wait of all arrivals, abandonment."""

    p_wait: float
    mean_wait_s: float
    p_abandon: float


def erlang_a(
    servers: int, arrival_rate: float, mean_service_s: float, abandon_rate: float
) -> ErlangA:
    """M/M/c+M (Palm's Erlang A) with exponential patience of rate `abandon_rate` per second.

    With p_k the stationary probabilities, everything is expressed relative to p_c: the states
    below c sum to 1/B(c, a) (Erlang B), and the states above c are the products
    prod_{j<=i} lambda / (c mu + j theta), summed one term at a time until they vanish.
    """
    if servers <= 0:
        raise ValueError(f"servers: need >= 1, got {servers}")
    if abandon_rate <= 0:
        p = erlang_c(servers, arrival_rate * mean_service_s)
        w = erlang_c_wait(servers, arrival_rate, mean_service_s)
        return ErlangA(p, w, 0.0)
    if arrival_rate <= 0:
        return ErlangA(0.0, 0.0, 0.0)
    mu = 1.0 / mean_service_s
    below = 1.0 / erlang_b(servers, arrival_rate * mean_service_s)  # sum_{k<=c} p_k / p_c
    term, tail, queue = 1.0, 0.0, 0.0
    i = 0
    while True:
        i += 1
        term *= arrival_rate / (servers * mu + i * abandon_rate)
        tail += term
        queue += i * term
        if term < 1e-16 * (below + tail) and servers * mu + i * abandon_rate > arrival_rate:
            break
        if i > 1_000_000:  # unreachable for sane inputs: the terms fall geometrically
            break
    total = below + tail
    p_wait = (1.0 + tail) / total
    mean_queue = queue / total
    return ErlangA(p_wait, mean_queue / arrival_rate, abandon_rate * mean_queue / arrival_rate)


def servers_for_wait(
    arrival_rate: float,
    mean_service_s: float,
    target_wait_s: float,
    *,
    abandon_rate: float = 0.0,
) -> int:
    """Fewest servers whose steady-state mean wait is at most `target_wait_s`.

    Erlang C without abandonment, Erlang A with it. Returns `MAX_SERVERS` when even that many
    do not reach the target.
    """
    if arrival_rate <= 0:
        return 0
    start = max(1, math.floor(arrival_rate * mean_service_s))
    for c in range(start, MAX_SERVERS + 1):
        if abandon_rate > 0:
            wait = erlang_a(c, arrival_rate, mean_service_s, abandon_rate).mean_wait_s
        else:
            wait = erlang_c_wait(c, arrival_rate, mean_service_s)
        if wait <= target_wait_s:
            return c
    return MAX_SERVERS


def extra_for_arrivals(
    arrival_rate: float,
    mean_service_s: float,
    current_servers: float,
    target_wait_s: float,
    *,
    abandon_rate: float = 0.0,
) -> int:
    """Windows to add so the current arrival rate is served within the target wait.

    `current_servers` may be fractional: a window shared with other services counts for the
    share of its time this service gets.
    """
    need = servers_for_wait(arrival_rate, mean_service_s, target_wait_s, abandon_rate=abandon_rate)
    return max(0, math.ceil(need - current_servers - 1e-9))


def closing_overrun(finish_at: float | None, closing_at: float) -> float:
    """Seconds of extended hours (延时服务) needed: 0 when the queue clears by closing time."""
    if finish_at is None:
        return 0.0
    return max(0.0, finish_at - closing_at)
