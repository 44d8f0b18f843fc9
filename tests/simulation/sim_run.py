"""The simulation of the whole core: a seeded world, a daemon that crashes, and its twin.

Two daemons are driven through the same steps of `tests.simulation.sim_world.world(seed)`
with a fake clock: the twin never crashes; the other is killed at random points (its memory dropped,
SQLite connections closed with whatever was not committed, as `kill -9` would) and started
again from its database through the daemon's own restore, then given the batch in flight again
(the broker redelivers what was not acknowledged). Both run the real code: parser, event store
in a real SQLite file, the daemon's processing of each stored event into the state and the
estimator, the alert tick (views, rule engine) and the outbox; only the MQTT socket and the
HTTP server are left out. After every step the invariants are checked; a failure names the
seed and the command that replays it. Many seeds: `.venv/bin/python -m tests.simulation.sim_run
1-2000` (or HALLWATCH_SIM_SEEDS with pytest).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sqlite3
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.service import Alerts
from hallwatch.daemon.config.alerts_reader import read_alerts
from hallwatch.daemon.config.sections import HallSettings, LimitsSettings, StoreSettings
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.core import state as state_mod
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.main import Daemon
from hallwatch.daemon.mqtt.ingest import Ingest
from hallwatch.daemon.pipeline.process import Pipeline
from hallwatch.daemon.staff.complaint_store import ComplaintStore
from hallwatch.daemon.staff.outage import CallbackStore
from hallwatch.daemon.staff.paper import PaperStore
from hallwatch.daemon.staff.procedures import Stores
from hallwatch.daemon.store.events import Store
from hallwatch.sensors.events import Event
from prometheus_client import generate_latest

from tests.simulation.sim_world import Step, world

LIMITS = {
    "halls": 4,
    "services": 8,
    "windows": 10,
    "doors": 6,
    "devices": 12,
    "systems": 4,
    "tickets": 250,
    "complaints": 20,
}
CRASH_P = 0.04  # per crash point passed
MAX_LOG_LINES_PER_STEP = 40
SCRAPE_EVERY = 4
REPLAY = "HALLWATCH_SIM_SEEDS={seed} .venv/bin/python -m pytest -q tests/simulation"


class Crash(BaseException):
    """kill -9 at an injected point: nothing catches it, as nothing survives a SIGKILL."""


class SimFailure(AssertionError):
    def __init__(self, seed: int, step: int, what: str) -> None:
        super().__init__(f"seed {seed}, step {step}: {what}\n  replay: {REPLAY.format(seed=seed)}")
        self.seed, self.step, self.what = seed, step, what


@dataclass
class Figures:
    seeds: int = 0
    steps: int = 0
    messages: int = 0
    crashes: int = 0
    restarts: int = 0
    checks: int = 0
    clean_stops: int = 0
    notifications: int = 0  # in the twin's outbox at the end, each compared after every tick
    refused: int = 0  # events the twin's state refused (stale day, over a cap)
    crash_points: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        return (
            f"steps {self.steps}, messages {self.messages}, crashes {self.crashes}, start-ups "
            f"{self.restarts}, clean stops {self.clean_stops}, invariant checks {self.checks}, "
            f"notifications compared {self.notifications}, events refused {self.refused}"
        )


class Faults:
    """Where the crashing daemon dies: each crash point passed kills it with probability p."""

    def __init__(self, rng: random.Random | None, p: float, figures: Figures) -> None:
        self.rng, self.p, self.figures = rng, p, figures

    def point(self, name: str, weight: float = 1.0) -> None:
        if self.rng is not None and self.rng.random() < self.p * weight:
            self.figures.crash_points[name] += 1
            raise Crash(name)


class CrashingStore(Store):
    faults: Faults

    async def commit_batch(self, *a: Any, **kw: Any) -> Any:
        self.faults.point("before store commit")
        out = await super().commit_batch(*a, **kw)
        self.faults.point("between store commit and state apply")
        return out

    async def save_snapshot(self, *a: Any, **kw: Any) -> None:
        self.faults.point("before snapshot")
        await super().save_snapshot(*a, **kw)
        self.faults.point("after snapshot")


class CrashingOutbox(Outbox):
    faults: Faults

    async def enqueue(self, *a: Any, **kw: Any) -> int:
        self.faults.point("before outbox commit")
        n = await super().enqueue(*a, **kw)
        self.faults.point("after outbox commit")
        return n


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def settings_for(db: Path) -> Settings:
    known = {f for f in LimitsSettings.__dataclass_fields__}
    return Settings(
        store=StoreSettings(path=str(db), synchronous="NORMAL"),
        hall=HallSettings(heartbeat_timeout_s=900.0),
        limits=LimitsSettings(**{k: v for k, v in LIMITS.items() if k in known}),
        alerts=read_alerts(
            {
                "wecom": {"robots": {"head": {"key": "k-head"}, "dir": {"key": "k-dir"}}},
                "sms": {"provider": "generic", "endpoint": "http://127.0.0.1:9/sms", "token": "t"},
                "roles": {
                    "supervisor": {"wecom": ["head"], "sms": ["13800000001"]},
                    "director": {"wecom": ["dir"], "sms": ["13900000002"]},
                },
            },
            {},
        ),
    )


class Node:
    """One daemon process, driven as `Daemon.run` drives it (minus the MQTT socket and HTTP):
    started from its database through the real restore, killed without a word."""

    def __init__(self, db: Path, clock: Clock, faults: Faults) -> None:
        self.settings = settings_for(db)
        self.clock = clock
        self.faults = faults
        self.stack = AsyncExitStack()
        self.d = Daemon(self.settings, clock=clock)

    async def start(self) -> None:
        s, d, stack = self.settings, self.d, self.stack
        path, sync = s.store.path, s.store.synchronous
        self.store = await stack.enter_async_context(CrashingStore(path, synchronous=sync))
        self.store.faults = self.faults
        self.outbox = await stack.enter_async_context(CrashingOutbox(path, synchronous=sync))
        self.outbox.faults = self.faults
        cstore = await stack.enter_async_context(ComplaintStore(path, synchronous=sync))
        cbstore = await stack.enter_async_context(CallbackStore(path, synchronous=sync))
        pstore = await stack.enter_async_context(PaperStore(path, synchronous=sync))
        # The daemon's own pipeline, its estimator lane drained after every event (live, it runs
        # just behind ingest), with a crash point between the two stages.
        d.pipeline = Pipeline(lambda: d.state, self.applied, d.faults)
        await d._restore(self.store)
        d.alerts = Alerts(d.alert_settings, self.outbox, clock=self.clock, metrics=d.alert_metrics)
        await d.alerts.start()
        d.ingest = Ingest(s, self.store, d.pipeline.process, d.metrics, clock=self.clock)
        await d._start_staff(Stores(cstore, cbstore, pstore, self.outbox))

    def applied(self, event: Event) -> None:
        self.d.lane.push(event)
        self.faults.point("between state apply and estimator", 0.02)  # passed once per event
        self.d.lane.drain()

    async def step(self, step: Step) -> None:
        """The batch the broker delivers (stored, then processed), then the tick if due."""
        d = self.d
        assert d.ingest is not None and d.complaints is not None
        if step.messages:
            await d.ingest.take(step.messages)
        if step.tick:
            await d.tick(step.now)
            await d.complaints.tick(step.now)

    async def snapshot(self) -> None:
        assert self.d.ingest is not None
        await self.d._snapshot(self.store, self.d.ingest.last_seq)

    async def kill(self) -> None:
        """kill -9: connections closed, what was not committed is lost with the memory."""
        await self.stack.aclose()

    async def stop(self) -> None:
        """A clean stop (SIGTERM): the estimator lane drained and a snapshot taken."""
        self.d.lane.drain()
        await self.snapshot()
        await self.stack.aclose()

    def rows(self, sql: str) -> set[tuple[Any, ...]]:
        con = sqlite3.connect(f"file:{self.settings.store.path}?mode=ro", uri=True)
        try:
            return {tuple(r) for r in con.execute(sql)}
        finally:
            con.close()


# --- invariants -------------------------------------------------------------------------------

_UNSAFE_CATEGORIES = ("Cc", "Cf")


def _unsafe(text: str) -> bool:
    return any(unicodedata.category(c) in _UNSAFE_CATEGORIES for c in text)


def comparable(node: Node, *, outputs: bool) -> dict[str, Any]:
    """What must be equal in the twin and the crashed daemon after the same steps; the outbox and
    complaints only after a tick (a starting daemon takes stored complaints in at once)."""
    d = node.d
    # A restart replays live tickets with quick, unscored estimates (their customers have their
    # tickets): the scoring memory (pending forecasts and their runs' spreads, errors, residuals)
    # differs.
    unset = dict.fromkeys(("resid", "forecasts", "zresid", "spreads"), msgspec.UNSET)
    learned = msgspec.structs.replace(d.estimator.learned, pending={}, errors={}, hist={}, **unset)
    out: dict[str, Any] = {
        "state": state_mod.encode(d.state),
        "learned": msgspec.json.encode(learned),
    }
    if outputs:
        out["outbox"] = node.rows("SELECT key FROM alert_outbox")
        out["complaints"] = node.rows("SELECT hall, complaint_id FROM complaints")
    return out


def cap_problems(state: HallsState) -> list[str]:
    lim = LIMITS
    out = []
    if len(state.halls) > lim["halls"]:
        out.append(f"{len(state.halls)} halls")
    for name, hall in state.halls.items():
        for what, n in (
            ("services", len(hall.services)),
            ("windows", len(hall.windows)),
            ("doors", len(hall.doors)),
            ("devices", len(hall.devices)),
            ("systems", len(hall.systems)),
        ):
            if n > lim[what]:
                out.append(f"{name}: {n} {what}")
        if hall.today is not None and len(hall.today.tickets) > lim["tickets"]:
            out.append(f"{name}: {len(hall.today.tickets)} tickets today")
        per_day: Counter[object] = Counter(
            state.business_day(c.received_at) for c in hall.complaints.values()
        )
        if per_day and max(per_day.values()) > lim["complaints"]:
            out.append(f"{name}: {max(per_day.values())} complaints in a day")
        for w in hall.windows.values():
            if len(w.services) > lim["services"]:
                out.append(f"{name}: a window lists {len(w.services)} services")
        names = [name, *hall.services, *hall.windows, *hall.doors, *hall.devices, *hall.systems]
        if hall.today is not None:
            names += list(hall.today.tickets)
        for w in hall.windows.values():
            names += w.services
        bad = [n for n in names if _unsafe(n)]
        if bad:
            out.append(f"{name}: control or bidi characters in {bad[:3]!r}")
    return out


def register_problems(node: Node) -> list[str]:
    """The complaint register holds at most `complaints` a hall and business day."""
    zone = ZoneInfo("Asia/Shanghai")
    days = Counter(
        (hall, datetime.fromtimestamp(at, zone).date())
        for hall, at in node.rows("SELECT hall, received_at FROM complaints")
    )
    return [f"register: {k}: {n} complaints" for k, n in days.items() if n > LIMITS["complaints"]]


class _LogCount(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.n = 0
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.n += 1
        self.last = record.getMessage()[:200]


# --- one seed -------------------------------------------------------------------------------


class _Seed:
    """One seed's run: the twin and the crashing daemon through the same steps."""

    def __init__(self, seed: int, work: Path, figures: Figures, skip: frozenset[str]) -> None:
        self.seed, self.work, self.figures, self.skip = seed, work, figures, skip
        self.steps = world(seed, LIMITS)
        self.rng = random.Random(f"crash:{seed}")
        self.clock = Clock()
        self.faults = Faults(self.rng, CRASH_P, figures)
        self.at = -1
        self.logs = _LogCount()
        self.node: Node | None = None  # the crashing daemon now running

    def fail(self, what: str) -> SimFailure:
        self.figures.failures[what.split(":")[0]] += 1
        return SimFailure(self.seed, self.at, what)

    def check(self, name: str, ok: bool, what: str = "") -> None:
        self.figures.checks += 1
        if not ok and name not in self.skip:
            raise self.fail(what)

    async def start(self) -> Node:
        """Start the crashing daemon from its database, as often as it takes (it may crash
        while starting); start-up itself must never fail."""
        while True:
            node = self.node = Node(self.work / "node.db", self.clock, self.faults)
            try:
                await node.start()
            except Crash:
                self.figures.crashes += 1
                await node.kill()
                continue
            except Exception as err:
                await node.kill()
                self.check("startup", False, f"start-up failed: {type(err).__name__}: {err}")
            self.check("startup", True)
            self.figures.restarts += 1
            return node

    async def run(self) -> None:
        logger = logging.getLogger("hallwatch")
        saved = logger.propagate, logger.level
        logger.addHandler(self.logs)
        logger.propagate, logger.level = False, logging.WARNING
        twin = Node(self.work / "twin.db", self.clock, Faults(None, 0.0, self.figures))
        try:
            self.clock.now = self.steps[0].now - 3600 if self.steps else 0.0
            await twin.start()
            await self.start()
            for i, step in enumerate(self.steps):
                self.at = i
                await self.step(twin, step)
            self.figures.notifications += len(twin.rows("SELECT key FROM alert_outbox"))
            self.figures.refused += twin.d.state.over_limit + sum(
                h.stale_events for h in twin.d.state.halls.values()
            )
            self.figures.seeds += 1
        finally:
            logger.removeHandler(self.logs)
            logger.propagate, logger.level = saved
            await twin.kill()
            if self.node is not None:
                await self.node.kill()  # whichever daemon is running, even after a failure

    async def step(self, twin: Node, step: Step) -> None:
        node = self.node
        assert node is not None
        self.clock.now = step.now
        self.logs.n = 0
        try:
            await twin.step(step)
        except Exception as err:
            raise self.fail(f"the live path raised: {type(err).__name__}: {err}") from err
        while True:
            try:
                await node.step(step)
                if self.rng.random() < 0.05:
                    await node.snapshot()
                if self.rng.random() < 0.02:
                    await node.stop()
                    self.figures.clean_stops += 1
                    node = await self.start()
                break
            except Crash:
                # The broker redelivers the batch it holds unacknowledged; the tick runs again.
                self.figures.crashes += 1
                await node.kill()
                node = await self.start()
            except Exception as err:
                raise self.fail(f"the live path raised: {type(err).__name__}: {err}") from err
        self.figures.steps += 1
        self.figures.messages += len(step.messages)
        self.invariants(twin, node, step.tick)

    def invariants(self, twin: Node, node: Node, ticked: bool) -> None:
        a, b = comparable(twin, outputs=ticked), comparable(node, outputs=ticked)
        for key in a:
            self.check(key, a[key] == b[key], f"{key} differs from the twin's: {_diff(key, a, b)}")
        problems = cap_problems(node.d.state) + register_problems(node)
        self.check("caps", not problems, f"a cap does not hold: {problems[:3]}")
        # A scrape costs as much as a step: every few steps (a bad value stays for a day).
        if self.at % SCRAPE_EVERY == 0 or self.at == len(self.steps) - 1:
            try:
                generate_latest(node.d.registry)
                self.check("metrics", True)
            except Exception as err:
                self.check("metrics", False, f"/metrics would fail: {type(err).__name__}: {err}")
        n, last = self.logs.n, self.logs.last
        self.check("logs", n <= MAX_LOG_LINES_PER_STEP, f"unthrottled logging: {n} lines ({last})")


def _diff(key: str, twin: dict[str, Any], node: dict[str, Any]) -> str:
    a, b = twin[key], node[key]
    if isinstance(a, set):
        return f"only the twin's: {sorted(a - b)[:3]}, only the crashed one's: {sorted(b - a)[:3]}"
    return _first_diff(msgspec.json.decode(a), msgspec.json.decode(b), "")


def _first_diff(a: Any, b: Any, path: str) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                return _first_diff(a.get(k), b.get(k), f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_diff(x, y, f"{path}[{n}]")
    return f"{path}: twin {str(a)[:120]} / crashed {str(b)[:120]}"


def run_seed(seed: int, figures: Figures, skip: frozenset[str] = frozenset()) -> None:
    """Run one seed; raises SimFailure with the seed and the replay command. `skip` names
    invariants not to check (state, learned, outbox, caps, metrics, logs), to look past one."""
    with tempfile.TemporaryDirectory(prefix=f"hallwatch-sim-{seed}-") as tmp:
        asyncio.run(_Seed(seed, Path(tmp), figures, skip).run())


def parse_seeds(text: str) -> list[int]:
    """'7', '1-200' or '1-50,90,100-120'."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", help="e.g. 1-2000")
    ap.add_argument("--keep-going", action="store_true", help="run every seed, then summarise")
    ap.add_argument("--skip", default="", help="invariants not to check, e.g. learned,logs")
    args = ap.parse_args(argv)
    total = Figures()
    failed: list[str] = []
    started = time.monotonic()
    for seed in parse_seeds(args.seeds):
        try:
            run_seed(seed, total, frozenset(filter(None, args.skip.split(","))))
        except SimFailure as err:
            failed.append(str(err).splitlines()[0])
            print(err, file=sys.stderr, flush=True)
            if not args.keep_going:
                break
    took = time.monotonic() - started
    print(f"seeds passed {total.seeds}, failed {len(failed)}; {total.summary()}; {took:.0f} s")
    print("crash points:", dict(total.crash_points.most_common()))
    print("failures by kind:", dict(total.failures.most_common()))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
