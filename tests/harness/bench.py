"""`python -m tests.harness.bench ingest|restart|users`: the daemon's persist-before-ack ingest
against a bare subscriber, and restart time with and without the snapshot; `users` is what users
feel, each figure against a baseline of the same run (tests/harness/bench_users.py).

Both consumers are measured in the same run on the same broker, the same way: N QoS 1
contract events are published while the consumer is away (its persistent session queues them),
then the consumer connects and drains the backlog; the rate is messages over the time from the
first to the last one handled. The publisher is thereby never the bottleneck of either figure.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
from hallwatch.daemon.config.sections import parse_broker_url
from hallwatch.sensors.publish import publish_all
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.harness.mosquitto import Mosquitto, free_port

SERVICES = ("提取", "缴存", "贷款", "转移")


def hall_traffic(n: int, halls: int = 4, run: str = "") -> list[tuple[str, bytes]]:
    """The first `n` messages of simulated peak days in `halls` halls, interleaved in time and
    shifted to end a second ago: the real mix of a busy province's halls (tickets, windows,
    door counters, heartbeats), each ticket estimated and published back as the daemon does."""
    from hallwatch.sensors.profiles import PROFILES
    from hallwatch.sensors.simulator import simulate_day

    merged: list[tuple[float, str, dict[str, object]]] = []
    for h in range(halls):
        profile = dataclasses.replace(PROFILES["peak"], hall=f"h{h}")
        day = simulate_day(profile, seed=h + 1)
        merged += [(m.at, m.topic, m.payload) for m in day.messages]
    merged.sort(key=lambda m: m[0])
    merged = merged[:n]
    shift = time.time() - 1 - merged[-1][0]
    out = []
    for at, topic, payload in merged:
        body = {**payload, "id": f"{payload['id']}{run}", "ts": int((at + shift) * 1000)}
        out.append((topic, json.dumps(body, ensure_ascii=False).encode()))
    return out


def contract_events(n: int, halls: int = 4, run: str = "") -> Iterator[tuple[str, bytes]]:
    """A mix of ticket, door and device events as the contract writes them."""
    base_ms = int(time.time() * 1000)
    for i in range(n):
        hall = f"h{i % halls}"
        ts = base_ms + i
        kind = i % 10
        if kind < 7:
            topic = f"hall/{hall}/ticket"
            body: dict[str, object] = {
                "id": f"tm-01:{run}{i}",
                "ts": ts,
                "type": "issued",
                "ticket": f"A{i}",
                "service": SERVICES[i % 4],
                "priority": "green" if i % 13 == 0 else "normal",
            }
        elif kind < 9:
            topic = f"hall/{hall}/door/d1"
            body = {"id": f"dc-1:{run}{i}", "ts": ts, "in_total": i, "out_total": i // 2}
        else:
            topic = f"hall/{hall}/device/tm-01"
            body = {
                "id": f"tm-01:hb{run}{i}",
                "ts": ts,
                "state": "online",
                "kind": "ticket_machine",
            }
        yield topic, json.dumps(body, ensure_ascii=False).encode()


async def _bare(host: str, port: int, n: int, client_id: str, preload: bool) -> float:
    """Connect the bare subscriber; if `preload`, only create its session and leave."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 2000
    async with aiomqtt.Client(
        host,
        port,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False,
        properties=props,
    ) as client:
        await client.subscribe("hall/#", qos=1)
        if preload:
            return 0.0
        got = 0
        first = 0.0
        async for msg in client.messages:
            json.loads(msg.payload)  # type: ignore[arg-type]
            if got == 0:
                first = time.perf_counter()
            got += 1
            if got >= n:
                break
        return (n - 1) / (time.perf_counter() - first)


def _get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def _start_daemon(
    broker_url: str, db: Path, listen: str, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "hallwatch.daemon.cli",
        "run",
        "--broker",
        broker_url,
        "--db",
        str(db),
    ]
    cmd += ["--listen", listen]
    full = {**os.environ, "HALLWATCH_MQTT_CLIENT_ID": "hallwatch-bench", **(env or {})}
    with open(log, "ab") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=full)


def _wait(pred: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise TimeoutError(what)


def _stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM and wait; a daemon that does not stop is a finding: show its stacks and log."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1)
        proc.kill()
        proc.wait()
        tail = log.read_text(errors="replace")[-6000:]
        msg = f"daemon did not stop within 60 s of SIGTERM; its log ends:\n{tail}"
        raise RuntimeError(msg) from None


def _daemon_rate(
    broker_url: str, n: int, work: Path, env: dict[str, str] | None = None, run: str = "d"
) -> float:
    """Events a second the daemon stores (`env`: more settings, e.g. store.url) from `n`
    queued for it while it was down."""
    db, log = work / "bench.db", work / "daemon.log"
    listen = f"127.0.0.1:{free_port()}"
    health = f"http://{listen}/healthz"
    proc = _start_daemon(broker_url, db, listen, log, env)
    try:
        _wait(lambda: _get_json(health)["mqtt_connected"], 30, "daemon did not connect")
        time.sleep(0.5)  # subscriptions in place: the session now exists
    finally:
        _stop(proc, log)
    b = parse_broker_url(broker_url, key="--broker")
    publish_all(b.host, b.port, hall_traffic(n, run=run), client_id=f"bench-pub-{run}")
    proc = _start_daemon(broker_url, db, listen, log, env)
    try:
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                applied = int(str(_get_json(health)["last_seq"]))
            except OSError:
                time.sleep(0.01)
                continue
            now = time.perf_counter()
            if first is None and applied > 0:
                first = (now, applied)
            if applied >= n and first is not None:
                return float(applied - first[1]) / (now - first[0])
            time.sleep(0.01)
        raise TimeoutError("daemon did not store every event")
    finally:
        _stop(proc, log)


def run_bench(events: int, broker: str | None) -> str:
    """Run both measurements; return the closing line."""
    with tempfile.TemporaryDirectory(prefix="hallwatch-bench-") as tmp:
        work = Path(tmp)
        mosq = None
        if broker is None:
            mosq = Mosquitto(work / "mosquitto")
            mosq.start()
            broker = mosq.url
        try:
            b = parse_broker_url(broker, key="--broker")
            bare_id = f"bench-bare-{os.getpid()}"
            asyncio.run(_bare(b.host, b.port, events, bare_id, preload=True))
            publish_all(b.host, b.port, hall_traffic(events, run="b"), client_id="bench-pub-b")
            bare = asyncio.run(_bare(b.host, b.port, events, bare_id, preload=False))
            print(f"bare aiomqtt subscriber (decode JSON, auto-ack): {bare:,.0f} ev/s", flush=True)
            daemon = _daemon_rate(broker, events, work)
            print(f"daemon (validate, store in SQLite, then ack):   {daemon:,.0f} ev/s", flush=True)
        finally:
            if mosq is not None:
                mosq.stop()
    return f"ingest: daemon {daemon:.0f} ev/s, bare {bare:.0f} ev/s, ratio {daemon / bare:.2f}"


async def _restart_figures(db: Path, days: int, per_day: int) -> tuple[float, float, int]:
    """Fill `db` with `days` of history, then time a restore with and without the snapshot."""
    from hallwatch.daemon.core.state import HallsState, encode
    from hallwatch.daemon.estimate.model import Estimator
    from hallwatch.daemon.main import encode_snapshot, restore
    from hallwatch.daemon.store.events import NewEvent, Store
    from hallwatch.sensors.events import Rejection
    from hallwatch.sensors.parse import parse

    state = HallsState()
    start = time.time() - days * 86400
    async with Store(db, synchronous="NORMAL") as store:
        for day in range(days):
            batch: list[NewEvent] = []
            for topic, payload in contract_events(per_day, run=f"{day}-"):
                body = json.loads(payload)
                body["ts"] = int((start + day * 86400) * 1000) + len(batch)
                raw = json.dumps(body, ensure_ascii=False).encode()
                event = parse(topic, raw)
                assert not isinstance(event, Rejection), event
                batch.append(NewEvent(event.hall, event.id, topic, event.ts, event.ts, raw))
                state.apply(event)
            _, last = await store.commit_batch(batch)
        await store.save_snapshot(last, time.time(), encode_snapshot(state, Estimator()))
        t0 = time.perf_counter()
        snap_state, _, _, replayed = await restore(store, "Asia/Shanghai", "hall")
        with_snapshot = time.perf_counter() - t0
        assert replayed == 0 and encode(snap_state) == encode(state)
        await store.clear_snapshots()
        t0 = time.perf_counter()
        full_state, _, _, replayed = await restore(store, "Asia/Shanghai", "hall")
        full = time.perf_counter() - t0
        assert encode(full_state) == encode(state), "full replay must rebuild the same state"
    return with_snapshot, full, replayed


def run_restart_bench(days: int, per_day: int) -> str:
    """Restart time over `days` of stored history: snapshot + tail versus replaying everything."""
    with tempfile.TemporaryDirectory(prefix="hallwatch-bench-") as tmp:
        snap, full, n = asyncio.run(_restart_figures(Path(tmp) / "h.db", days, per_day))
    print(f"history: {days} days x {per_day} events = {n} events")
    print(f"restore from snapshot: {snap * 1000:.1f} ms; full replay: {full * 1000:.0f} ms")
    return f"restart: snapshot {snap:.3f} s, full replay {full:.3f} s, ratio {snap / full:.3f}"


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.harness.bench ingest [--events N] [--broker URL]`, `... restart`,
    `... postgres [--events N --lease-s S]` (bench_pg.py), or
    `... users [--halls-small 50 --halls-large 500 --events 20000 --quick]`, or
    `... estimate [--set development|held_out|both]` (tests/harness/bench_estimate.py)."""
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["postgres"]:
        from tests.harness.bench_pg import main as pg_main

        return pg_main(args_in[1:])
    if args_in[:1] == ["estimate"]:
        from tests.harness.bench_estimate import main as estimate_main

        return estimate_main(args_in[1:])
    if args_in[:1] == ["users"]:
        from tests.harness.bench_users import main as users_main

        return users_main(args_in[1:])
    ap = argparse.ArgumentParser(prog="python -m tests.harness.bench")
    ap.add_argument("what", choices=["ingest", "restart", "users", "postgres"])
    ap.add_argument("--events", type=int, default=20000, help="ingest: events to publish")
    ap.add_argument("--days", type=int, default=60, help="restart: days of history")
    ap.add_argument("--events-per-day", type=int, default=3000, help="restart: events a day")
    ap.add_argument("--broker", help="use this broker instead of a private Mosquitto")
    args = ap.parse_args(argv)
    if args.what == "restart":
        print(run_restart_bench(args.days, args.events_per_day))
        return 0
    started = time.monotonic()
    line = run_bench(args.events, args.broker)
    print(f"({args.events} events, {time.monotonic() - started:.1f} s)")
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
