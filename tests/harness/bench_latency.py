"""Latency publish → estimate (`bench users`, figure 2).

Simulated peak-day traffic of `halls` halls is published at a fixed rate from half an hour after
opening on, each event stamped with the time it is published; the daemon is first fed the day up
to then (heartbeats thinned, as a backlog), so it estimates with open windows and a queue. (From
the busiest hour the daemon fell to ~10 events/s at 100 halls and a run would not end.) The
daemon publishes one `{root}/{hall}/estimate` per issued ticket (docs/contract.md "Outputs"); a
recorder process subscribed to `hall/+/estimate` notes when each arrives, matched to its `issued`
event by (hall, ticket), in order. Baseline: the same publisher and recorder, no daemon, the
recorder subscribed to `hall/+/ticket`: what the broker alone costs from publish to a subscriber.
Each consumer gets a fresh private Mosquitto.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from tests.harness.bench_procs import (
    BareProc,
    cpu_seconds,
    settle,
    start_daemon,
    stop_daemon,
    wait_processed,
)
from tests.harness.bench_traffic import (
    Msg,
    encode,
    merged,
    paced_publish,
    publish_steady,
    split_after_opening,
    thin,
)
from tests.harness.mosquitto import Mosquitto

PRIME_S = 1800.0  # the paced window starts this long after the day's first ticket


@dataclass(frozen=True)
class Latency:
    """Quantiles in ms of the matched tickets; `issued`: tickets published in the window."""

    p50: float
    p99: float
    max: float
    matched: int
    issued: int
    cpu_pct: float = float("nan")  # the consumer's CPU over the paced window, % of one core


def quantiles_ms(values: list[float], issued: int) -> Latency:
    v = sorted(x * 1000 for x in values)
    if not v:
        return Latency(float("nan"), float("nan"), float("nan"), 0, issued)
    p99 = v[min(len(v) - 1, int(len(v) * 0.99))]
    return Latency(v[len(v) // 2], p99, v[-1], len(v), issued)


def match(
    issued: dict[tuple[str, str], list[float]], got: list[tuple[str, str, float]]
) -> list[float]:
    """Receive minus publish time for each issued ticket that arrived, paired in order."""
    seen: dict[tuple[str, str], list[float]] = {}
    for hall, ticket, at in got:
        seen.setdefault((hall, ticket), []).append(at)
    out = []
    for key, sent in issued.items():
        for pub, rec in zip(sent, seen.get(key, []), strict=False):
            out.append(rec - pub)
    return out


def _slices(halls: int, plan: list[tuple[int, float]]) -> tuple[list[Msg], list[list[Msg]]]:
    """(the day before the busiest hour, thinned; the paced slice of each rate)."""
    before, msgs = split_after_opening(merged(halls, "peak"), PRIME_S)
    out, at = [], 0
    for rate, seconds in plan:
        n = int(rate * seconds)
        out.append(msgs[at : at + n])
        at += n
    if at > len(msgs):
        raise ValueError(f"{halls} halls give {len(msgs)} events, not the {at} needed")
    return thin(before), out


def _run(
    work: Path,
    daemon: bool,
    halls: int,
    plan: list[tuple[int, float]],
    slices: list[list[Msg]],
    prime: list[Msg],
    grace_s: float,
) -> list[Latency]:
    name = "daemon" if daemon else "bare"
    out = []
    with Mosquitto(work / f"mq-lat-{name}") as mq:
        child = start_daemon(work / "lat-daemon", mq.url, halls, "lat") if daemon else None
        try:
            if child is not None:
                publish_steady("127.0.0.1", mq.port, encode(prime, "p"), "bench-prime")
                try:
                    wait_processed(child, len(prime), 300)
                    settle(child, 120)
                except TimeoutError as err:
                    print(f"  .. latency: morning not digested: {err}", file=sys.stderr)
            for i, ((rate, _), msgs) in enumerate(zip(plan, slices, strict=True)):
                rec_file = work / f"lat-{name}-{rate}.json"
                topic = "hall/+/estimate" if daemon else "hall/+/ticket"
                recorder = BareProc("127.0.0.1", mq.port, "record", topic, rec_file)
                pid = child.pid if child is not None else recorder.pid
                try:
                    cpu0, t0 = cpu_seconds(pid), time.monotonic()
                    issued = paced_publish(
                        "127.0.0.1", mq.port, msgs, rate, f"l{i}", f"bench-lat-{name}-{i}"
                    )
                    time.sleep(grace_s)  # the last estimates' way back
                    cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
                finally:
                    recorder.close()
                got = [tuple(x) for x in json.loads(rec_file.read_text())]
                lat = match(issued, got)  # type: ignore[arg-type]
                q = quantiles_ms(lat, sum(len(v) for v in issued.values()))
                out.append(replace(q, cpu_pct=cpu))
        finally:
            if child is not None:
                stop_daemon(child)
    return out


def run_latency(
    work: Path, halls: int, plan: list[tuple[int, float]], grace_s: float = 2.0
) -> list[tuple[int, Latency, Latency]]:
    """(rate, daemon, bare) for each (rate ev/s, seconds) of `plan`, published in that order."""
    prime, slices = _slices(halls, plan)
    daemon = _run(work, True, halls, plan, slices, prime, grace_s)
    bare = _run(work, False, halls, plan, slices, prime, grace_s)
    return [(rate, d, b) for (rate, _), d, b in zip(plan, daemon, bare, strict=True)]


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.harness.bench_latency [--halls 100 --seconds 40,20 --quick]`: the
    latency figure of `bench users` alone, printed as its table rows."""
    import argparse
    import os
    import tempfile

    from tests.harness.bench_users import Row, table

    ap = argparse.ArgumentParser(prog="python -m tests.harness.bench_latency")
    ap.add_argument("--halls", type=int, default=100)
    ap.add_argument("--seconds", default="40,20", help="at 100 then 1,000 ev/s")
    ap.add_argument("--quick", action="store_true", help="2 s per rate (a smoke run)")
    args = ap.parse_args(argv)
    secs = [2.0, 2.0] if args.quick else [float(x) for x in args.seconds.split(",")]
    plan = [(100, secs[0]), (1000, secs[1])]
    load = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="hallwatch-bench-latency-") as tmp:
        for rate, d, b in run_latency(Path(tmp), args.halls, plan, 1.0 if args.quick else 2.0):
            tag = f"@ {rate} ev/s, {args.halls} halls"
            rows += [
                Row(f"latency p50 ms {tag}", d.p50, b.p50, "bare sub", ""),
                Row(f"latency p99 ms {tag}", d.p99, b.p99, "bare sub", "< 50 ms" if rate >= 1000
                    else "", d.p99 < 50 if rate >= 1000 else None),
                Row(f"latency max ms {tag}", d.max, b.max, "bare sub", ""),
                Row(f"CPU % of a core {tag}", d.cpu_pct, b.cpu_pct, "bare sub", ""),
                Row(f"estimates matched {tag}", d.matched, d.issued, "tickets issued", "all",
                    d.matched == d.issued, 0),
            ]  # fmt: skip
    print(table(rows))
    print(f"(load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
