"""Two instances, one voice, in real processes: two senders (tests/harness/claimer.py) share the
outbox in a private PostgreSQL and one WeCom-style receiver; the sender is killed with -9
mid-way; every notification reaches the receiver exactly once, the survivor after the lease."""

from __future__ import annotations

import asyncio
import collections
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from tests import REPO
from tests.harness.alert_fakes import FakeWecom, serve

N = 40
LEASE_S = 3.0


def spawn(url: str, instance: str, base: str, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "tests.harness.claimer", url, instance, base, str(N), str(LEASE_S)]
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)


def rows(url: str) -> list[tuple[str, str, float | None]]:
    """(state, claimed_by, done_at) of every outbox row."""
    with psycopg.connect(url) as con:
        got = con.execute("SELECT state, claimed_by, done_at FROM hallwatch.alert_outbox")
        return [(r[0], r[1], r[2]) for r in got.fetchall()]


async def until(pred: Callable[[], bool], limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not await asyncio.to_thread(pred):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_sender_killed_midway_survivor_delivers_the_rest_once(
    pg_url: str, tmp_path: Path
) -> None:
    """Two senders enqueue the same 40 notifications (stored once); only the claimer sends while
    it lives; after its kill -9 the survivor takes over once the lease ran out; the receiver
    shows each notification exactly once."""
    wecom = FakeWecom(limit=1000, delay_s=0.05)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        async with serve(wecom.app()) as base:
            a = spawn(pg_url, "a", base, tmp_path / "a.log")
            procs.append(a)
            await until(lambda: "enqueued" in (tmp_path / "a.log").read_text(), 20, "A enqueued")
            b = spawn(pg_url, "b", base, tmp_path / "b.log")
            procs.append(b)
            await until(lambda: "enqueued 0" in (tmp_path / "b.log").read_text(), 20, "B, 0 new")
            await until(lambda: len(wecom.accepted) >= 10, 20, "A's first deliveries")
            # Mid-way: the receiver refuses from now on; once what it accepted is recorded as
            # sent, no delivery is in flight, and the sender dies.
            wecom.fail = "http500"
            await asyncio.sleep(0.5)  # a request past the check when it was set is answered
            accepted = len(wecom.accepted)
            sent = lambda: sum(r[0] == "sent" for r in rows(pg_url))  # noqa: E731
            await until(lambda: sent() == accepted, 10, "the accepted ones recorded")
            holders = collections.Counter(r[1] for r in rows(pg_url) if r[0] == "pending")
            sender = a if holders.most_common(1)[0][0] == "a" else b
            survivor = b if sender is a else a
            sender.kill()
            killed = time.time()
            await asyncio.to_thread(sender.wait)
            # A request the sender wrote just before it died is still refused (the receiver
            # answers in this event loop): no delivery was in flight at the kill.
            await asyncio.sleep(0.3)
            wecom.fail = None
            await until(lambda: len(wecom.accepted) >= N, 30, "every notification")
            await asyncio.sleep(1.0)  # and nothing more after that
            assert survivor.poll() is None
    finally:
        for p in procs:
            p.kill()
            p.wait()
    shown = collections.Counter(h.body["markdown"]["content"] for h in wecom.accepted)
    assert shown == collections.Counter(f"第{i}条" for i in range(N)), "each exactly once"
    final = rows(pg_url)
    assert len(final) == N and all(r[0] == "sent" for r in final)
    name = "a" if sender is a else "b"
    assert not [r for r in final if r[1] != name and r[2] is not None and r[2] < killed], (
        "only the claimer sent while it lived"
    )
    after = sorted(h.at for h in wecom.accepted if h.at > killed)
    failover = after[0] - killed
    print(
        f"\nfailover: {failover:.2f} s (lease {LEASE_S} s);"
        f" delivered before the kill {accepted}, after {len(after)}"
    )
    assert LEASE_S * 0.3 <= failover <= LEASE_S + 3.0
