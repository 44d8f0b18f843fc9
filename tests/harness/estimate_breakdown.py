"""Per-ticket breakdown of the wait estimator's error against the classic predictors
(issue #17): `python -m tests.harness.estimate_breakdown quiet:1-12 outage:12 --modes cold`.

Replays day 0 of each development hall as `daemon.offline.scoring.score` does (the same pipeline,
the same classic predictors) and records, for every scored ticket, what the daemon could see at
its issue: its place in line, its class, its service, the windows able to serve it (open, idle,
paused), the hour, whether a business system was down, and whether it was called at once. The
groups printed are ranked by how much more absolute error the daemon made than the family's best
classic predictor (`loss`, seconds summed over the group's tickets). `--csv FILE` keeps the rows.
Development seeds only: never point it at held-out halls.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hallwatch.daemon.core.state import WAITING, Hall, HallsState
from hallwatch.daemon.estimate.forecast import outage_end
from hallwatch.daemon.estimate.learned import SEP
from hallwatch.daemon.estimate.model import EstimateOut, Estimator
from hallwatch.daemon.estimate.predictors import NAMES
from hallwatch.daemon.offline.replay import accepted_events
from hallwatch.daemon.offline.scoring import baselines, warmed_on
from hallwatch.daemon.pipeline.process import offline
from hallwatch.sensors.events import PRIORITY_RANK, TicketEvent
from hallwatch.sensors.scenarios import hall_profile

from tests.harness.bench_estimate import day_messages, hall_spec, scenario_hours

ZONE = ZoneInfo("Asia/Shanghai")
SEEDS = Path(__file__).with_name("estimate_seeds.json")


def _law(est: Estimator, state: HallsState, out: EstimateOut) -> dict[str, float]:
    """The service law the estimate used."""
    hall = state.halls[out.hall]
    est.censoring(est.in_service(hall, hall.today, out.at) if hall.today else None)
    try:
        law = est.law(out.service)
    finally:
        est.censoring(None)
    return {"law_mean": law.mean, "law_sigma": law.sigma}


def _features(state: HallsState, est: Estimator, out: EstimateOut) -> dict[str, Any]:
    hall = state.halls[out.hall]
    day = hall.today
    assert day is not None
    me = day.tickets[out.ticket]
    rank = PRIORITY_RANK.get(me.priority, 2)
    mine = (rank, me.issued_at or out.at)
    ahead_same = ahead_class = ahead_any = 0
    for k, t in day.tickets.items():
        if k == out.ticket or t.status != WAITING or not t.service:
            continue
        key = (PRIORITY_RANK.get(t.priority, 2), t.issued_at or out.at)
        if key < mine:
            ahead_any += 1
            if t.service == me.service:
                ahead_same += 1
                ahead_class += key[0] == rank
    able = [w for w in hall.windows.values() if me.service in w.services]
    open_ = [w for w in able if w.state == "open"]
    idle = sum(1 for w in open_ if w.serving is None)
    paused = sum(1 for w in able if w.state == "paused")
    local = datetime.fromtimestamp(out.at, ZONE)
    base = baselines(out, state, est)
    forecast = (est.learned.forecasts or {}).get(f"{out.hall}{SEP}{out.ticket}")
    # Services the windows able to serve it also serve: how shared its windows are.
    shared = len({s for w in open_ for s in w.services}) if open_ else 0
    return {
        "hall": out.hall,
        "ticket": out.ticket,
        "service": out.service,
        "priority": out.priority,
        "hour": local.hour + local.minute / 60.0,
        "ahead_same": ahead_same,
        "ahead_class": ahead_class,
        "ahead_any": ahead_any,
        "open": len(open_),
        "idle": idle,
        "paused": paused,
        "open_all": sum(1 for w in hall.windows.values() if w.state == "open"),
        "shared": shared,
        "outage": bool(outage_end(hall, out.at)),
        **_law(est, state, out),
        "completions": len(est.learned.service_logs.get(out.service, [])),
        "daemon": out.estimated_wait_s,
        "forecast": forecast,
        "p10": out.p10_s,
        "p90": out.p90_s,
        **base.as_dict(),
    }


def _lunch(est: Estimator, hall: Hall, r: dict[str, Any]) -> str:
    """Where the lunch turns (`[hours]`) of the windows serving the ticket's service stand
    against its wait [issue, call]: in a turn at its issue (`turn began <10 min` ago, or `in
    turn` for longer), a turn `starts in wait`, or `none`."""
    turns = est.lunch_turns(r["hall"], r["at"])
    able = [n for n, w in hall.windows.items() if r["service"] in w.services and n in turns]
    at, end = r["at"], r["at"] + r["actual"]
    spans = [span for n in able for span in turns[n]]
    began = [at - a for a, b in spans if a <= at < b]
    if began:
        return "turn began <10 min" if min(began) < 600.0 else "in turn"
    if any(at < a < end for a, _ in spans):
        return "starts in wait"
    return "none"


def run_hall(job: tuple[str, int, bool, int, bool]) -> list[dict[str, Any]]:
    """Every scored ticket of day 0 of one hall, with its features; the estimator has the
    bench's `[hours]` (the hall's lunch rotation), or none with `lunch` False."""
    family, seed, warm, learned, lunch = job
    # The `[hours]` the bench passes; the lunch feature is read from them either way.
    hours = scenario_hours(family, seed)
    est = Estimator(hours=hours if lunch else None)
    if warm:
        days = (day_messages(family, seed, -d) for d in range(learned, 0, -1))
        est = warmed_on(days, hours=hours if lunch else None)
    seen = Estimator(hours=hours)
    state = HallsState(tz="Asia/Shanghai")
    step = offline(state, est)
    rows: dict[str, dict[str, Any]] = {}
    done: list[dict[str, Any]] = []
    for event in accepted_events(day_messages(family, seed, 0), "hall"):
        outs = step(event)
        if not isinstance(event, TicketEvent):
            continue
        if event.type == "issued":
            for o in outs:
                if isinstance(o, EstimateOut) and o.revision == 0:
                    f = _features(state, est, o)
                    f.update(family=family, seed=seed, mode="warm" if warm else "cold", at=o.at)
                    spec = {x.name: x for x in hall_profile(family, seed).profile.services}
                    f["true_mean"] = spec[o.service].mean_s if o.service in spec else None
                    f["true_sigma"] = spec[o.service].sigma if o.service in spec else None
                    rows[event.ticket] = f
        elif event.type == "called" and event.ticket in rows:
            r = rows.pop(event.ticket)
            r["actual"] = max(0.0, event.ts - r["at"])
            hall = state.halls[event.hall]
            w = hall.windows.get(event.window or "")
            r["called_by_services"] = len(w.services) if w else 0
            r["lunch"] = _lunch(seen, hall, r)
            if r["daemon"] is not None:
                done.append(r)
        elif event.type in ("cancelled", "transferred"):
            rows.pop(event.ticket, None)
    return done


GROUPS: dict[str, Callable[[dict[str, Any]], object]] = {
    "ahead_same": lambda r: min(r["ahead_same"], 6),
    "ahead_any": lambda r: min(r["ahead_any"], 8),
    "priority": lambda r: r["priority"],
    "service": lambda r: f"{r['family']}{r['seed']}:{r['service']}",
    "open": lambda r: min(r["open"], 6),
    "idle": lambda r: min(r["idle"], 3),
    "paused": lambda r: min(r["paused"], 3),
    "hour": lambda r: int(r["hour"]),
    "outage": lambda r: r["outage"],
    "at_once": lambda r: (
        ("called<10s" if r["actual"] < 10 else "waited")
        + ("/told0" if (r["daemon"] or 0) < 1 else "/told>0")
    ),
    "clear": lambda r: "idle" if r["idle"] > r["ahead_same"] else f"ahead{min(r['ahead_same'], 3)}",
    "hall": lambda r: f"{r['family']}{r['seed']}",
    "lunch": lambda r: r["lunch"],
    "lunch_hour": lambda r: f"{r['lunch']}/{int(r['hour'])}",
}


def report(rows: list[dict[str, Any]], best: str, groups: Iterable[str]) -> list[str]:
    lines = []
    for g in groups:
        key = GROUPS[g]
        acc: dict[object, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0.0])
        for r in rows:
            a = acc[key(r)]
            d = abs((r["daemon"] or 0.0) - r["actual"])
            b = abs((r[best] or 0.0) - r["actual"])
            a[0] += 1
            a[1] += d
            a[2] += b
            a[3] += r["actual"]
            a[4] += (r["daemon"] or 0.0) - r["actual"]
        total = sum(v[2] for v in acc.values())
        lines.append(f"\n== by {g} (best classic: {best}; loss = sum|daemon err| - sum|best err|)")
        lines.append(
            f"{'group':24} {'n':>5} {'wait':>7} {'mae_d':>7} {'mae_b':>7} {'ratio':>6} "
            f"{'bias_d':>7} {'loss_s':>9} {'share':>6}"
        )
        for k, (n, d, b, w, bias) in sorted(acc.items(), key=lambda kv: kv[1][2] - kv[1][1]):
            lines.append(
                f"{k!s:24} {n:5} {w / n:7.1f} {d / n:7.1f} {b / n:7.1f} "
                f"{(d / b if b else float('nan')):6.2f} {bias / n:7.1f} {d - b:9.0f} "
                f"{d / total if total else 0:6.2f}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.harness.estimate_breakdown")
    ap.add_argument("halls", nargs="+", help="family:seeds, e.g. quiet:1-6,10-12")
    ap.add_argument("--modes", default="cold")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--groups", default=",".join(GROUPS))
    ap.add_argument("--csv", type=Path)
    ap.add_argument("--no-lunch", action="store_true", help="the estimator without `[hours]`")
    args = ap.parse_args(argv)
    spec = json.loads(SEEDS.read_text(encoding="utf-8"))
    dev = set(spec["development"]["families"])
    work = []
    for h in args.halls:
        family, seeds = hall_spec(h)
        seeds = seeds or [s for b in spec["development"]["batches"] for s in b]
        held = {s for b in spec["held_out"]["batches"] for s in b}
        if family not in dev | {"blend"} or held & set(seeds):
            raise SystemExit(f"{h}: development halls only")
        for warm in (m == "warm" for m in args.modes.split(",")):
            lunch = not args.no_lunch
            work += [(family, s, warm, spec["learned_days"], lunch) for s in seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = [r for rs in pool.map(run_hall, work, chunksize=1) for r in rs]
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    maes = {p: sum(abs((r[p] or 0.0) - r["actual"]) for r in rows) / len(rows) for p in NAMES}
    best = min(maes, key=lambda p: maes[p])
    d = sum(abs((r["daemon"] or 0.0) - r["actual"]) for r in rows) / len(rows)
    print(
        f"{len(rows)} tickets; MAE daemon {d:.1f}, "
        + ", ".join(f"{p} {m:.1f}" for p, m in maes.items())
        + f"; ratio {d / maes[best]:.3f} to {best}"
    )
    print("\n".join(report(rows, best, args.groups.split(","))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
