"""Two instances, one voice, in real processes: two senders (tests/harness/claimer.py) share the
outbox in a private PostgreSQL and one WeCom-style receiver; the sender is killed with -9
mid-way (tests/harness/failover.py); every notification reaches the receiver exactly once, the
survivor's after the lease."""

from __future__ import annotations

import collections
from pathlib import Path

from tests.harness.failover import run_failover

N = 40
LEASE_S = 3.0


async def test_sender_killed_midway_survivor_delivers_the_rest_once(
    pg_url: str, tmp_path: Path
) -> None:
    """Two senders enqueue the same 40 notifications (stored once); only the claimer sends while
    it lives; after its kill -9 the survivor takes over once the lease ran out; the receiver
    shows each notification exactly once."""
    f = await run_failover(pg_url, tmp_path, N, LEASE_S)
    assert f.shown == collections.Counter(f"第{i}条" for i in range(N)), "each exactly once"
    assert f.survivor_alive
    assert len(f.rows) == N and all(r[0] == "sent" for r in f.rows)
    early = [r for r in f.rows if r[1] != f.sender and r[2] is not None and r[2] < f.killed_at]
    assert not early, "only the claimer sent while it lived"
    print(
        f"\nfailover: {f.failover_s:.2f} s (lease {LEASE_S} s);"
        f" delivered before the kill {f.accepted_before}, after {len(f.after)}"
    )
    assert LEASE_S * 0.3 <= f.failover_s <= LEASE_S + 3.0
