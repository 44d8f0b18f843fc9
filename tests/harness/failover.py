"""Two senders on one PostgreSQL outbox and a WeCom-style receiver; the sender is killed with
-9 mid-way (tests/alerts/test_two_senders.py asserts on it, `bench postgres` prints it).

Mid-way is a clean cut: the receiver starts refusing, what it accepted is recorded as sent, and
then the sender dies, so no delivery is in flight at the kill (one that is would be sent again
by the survivor: at least once, by design). The receiver accepts again right after the kill.
"""

from __future__ import annotations

import asyncio
import collections
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests import REPO
from tests.harness.alert_fakes import FakeWecom, serve


@dataclass
class Failover:
    killed_at: float  # wall clock of the kill
    sender: str  # the instance killed
    accepted_before: int  # deliveries before the kill
    after: list[float]  # wall clock of each delivery after the kill
    shown: collections.Counter[str]  # message text -> times the receiver showed it
    rows: list[tuple[str, str, float | None]]  # (state, claimed_by, done_at) per outbox row
    survivor_alive: bool

    @property
    def failover_s(self) -> float:
        """From the sender's death to the survivor's first delivery."""
        return self.after[0] - self.killed_at


def spawn(
    url: str, instance: str, base: str, n: int, lease_s: float, log: Path
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "tests.harness.claimer", url, instance, base, str(n), str(lease_s)]
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
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def run_failover(url: str, work: Path, n: int = 40, lease_s: float = 3.0) -> Failover:
    """Two senders (a, then b) enqueue the same `n` notifications; the one holding the claims
    is killed after 10 deliveries; returns what the receiver and the outbox saw."""
    wecom = FakeWecom(limit=100_000, delay_s=0.05)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        async with serve(wecom.app()) as base:
            for name, says in (("a", "enqueued"), ("b", "enqueued 0")):
                log = work / f"{name}.log"
                procs[name] = spawn(url, name, base, n, lease_s, log)
                await until(lambda log=log, s=says: s in log.read_text(), 20, f"{name}: {says}")
            await until(lambda: len(wecom.accepted) >= 10, 20, "the first deliveries")
            wecom.fail = "http500"
            await asyncio.sleep(0.5)  # a request past the check when it was set is answered
            accepted = len(wecom.accepted)
            sent = lambda: sum(r[0] == "sent" for r in rows(url))  # noqa: E731
            await until(lambda: sent() == accepted, 10, "the accepted ones recorded")
            holders = collections.Counter(r[1] for r in rows(url) if r[0] == "pending")
            sender = holders.most_common(1)[0][0]
            procs[sender].kill()
            killed = time.time()
            await asyncio.to_thread(procs[sender].wait)
            # A request the sender wrote just before it died is still refused (the receiver
            # answers in this event loop): no delivery was in flight at the kill.
            await asyncio.sleep(0.3)
            wecom.fail = None
            await until(lambda: len(wecom.accepted) >= n, 30 + 2 * lease_s, "every delivery")
            await asyncio.sleep(1.0)  # and nothing more after that
            alive = all(p.poll() is None for name, p in procs.items() if name != sender)
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
    return Failover(
        killed_at=killed,
        sender=sender,
        accepted_before=accepted,
        after=sorted(h.at for h in wecom.accepted if h.at > killed),
        shown=collections.Counter(h.body["markdown"]["content"] for h in wecom.accepted),
        rows=rows(url),
        survivor_alive=alive,
    )
