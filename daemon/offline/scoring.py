"""Replay scoring of wait estimates: the daemon's estimator against the classic predictors.

`score(messages)` drives the parser, the state core and the `Estimator` over a recorded day
exactly as the daemon would (de-duplicated by (hall, id), in arrival order), computes the
classic predictors (QL, QL-A, LES, HOL) for every issued ticket at the same moment, and pairs
each with the ticket's actual wait (issued -> called). `ScoreReport.summary()` gives MAE and
RASE (root mean squared error over the mean actual wait) per service and overall for each
predictor, and the ratio of the daemon's MAE to the best classic one.

Run `python -m hallwatch.daemon.offline.scoring --seeds 1-5` for the table
over the simulator's profiles.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hallwatch.daemon.core.hours import Timetable
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.estimate.forecast import outage_end
from hallwatch.daemon.estimate.model import EstimateOut, Estimator
from hallwatch.daemon.estimate.predictors import NAMES, Classic, classic
from hallwatch.daemon.offline.replay import accepted_events
from hallwatch.daemon.pipeline.process import offline
from hallwatch.sensors.events import TicketEvent

PREDICTORS = ("daemon", *NAMES)
CSV_COLUMNS = (
    "hall",
    "ticket",
    "service",
    "priority",
    "issued_at",
    "estimated_wait_s",
    "actual_wait_s",
)


@dataclass(slots=True)
class Row:
    hall: str
    ticket: str
    service: str
    priority: str
    issued_at: float
    estimates: dict[str, float | None]  # predictor -> estimate at issue time
    actual_wait_s: float | None = None
    p10_s: float | None = None  # the daemon's range at issue time
    p90_s: float | None = None


@dataclass
class ScoreReport:
    rows: list[Row] = field(default_factory=list)

    def scored(self) -> list[Row]:
        """Rows every predictor is judged on: called, and the daemon gave a number."""
        return [
            r
            for r in self.rows
            if r.actual_wait_s is not None and r.estimates.get("daemon") is not None
        ]

    def summary(self) -> dict[str, Any]:
        rows = self.scored()
        services = sorted({r.service for r in rows})
        out: dict[str, Any] = {
            "tickets": len(self.rows),
            "scored": len(rows),
            "mean_actual_wait_s": _round(_mean([r.actual_wait_s or 0.0 for r in rows])),
            "overall": {p: _errors(rows, p) for p in PREDICTORS},
            "by_service": {
                s: {p: _errors([r for r in rows if r.service == s], p) for p in PREDICTORS}
                for s in services
            },
        }
        best = min(
            (out["overall"][p]["mae_s"] for p in NAMES if out["overall"][p]["mae_s"] is not None),
            default=None,
        )
        mine = out["overall"]["daemon"]["mae_s"]
        out["best_classic"] = next(
            (p for p in NAMES if best is not None and out["overall"][p]["mae_s"] == best), None
        )
        out["mae_ratio"] = _round(mine / best, 3) if best and mine is not None else None
        out["coverage"] = coverage(rows)
        return out

    def write_csv(self, path: str | Path) -> None:
        """One row per issued ticket; empty fields where there is no estimate or no call."""
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(CSV_COLUMNS)
            for r in self.rows:
                est = r.estimates.get("daemon")
                w.writerow(
                    [
                        r.hall,
                        r.ticket,
                        r.service,
                        r.priority,
                        f"{r.issued_at:.3f}",
                        "" if est is None else f"{est:.1f}",
                        "" if r.actual_wait_s is None else f"{r.actual_wait_s:.1f}",
                    ]
                )


def score(
    messages: Iterable[tuple[str, bytes]],
    *,
    root: str = "hall",
    tz: str = "Asia/Shanghai",
    estimator: Estimator | None = None,
) -> ScoreReport:
    """Replay `messages` through the core and the estimator, scoring every issued ticket."""
    state = HallsState(tz=tz)
    est = estimator or Estimator(tz=tz)
    report = ScoreReport()
    open_rows: dict[tuple[str, str], Row] = {}
    step = offline(state, est)
    for event in accepted_events(messages, root):
        outs = step(event)
        if not isinstance(event, TicketEvent):
            continue
        tkey = (event.hall, event.ticket)
        if event.type == "issued":
            for out in outs:
                if isinstance(out, EstimateOut):
                    row = _row(out, state, est)
                    report.rows.append(row)
                    open_rows[tkey] = row
        elif event.type == "called" and tkey in open_rows:
            row = open_rows.pop(tkey)
            row.actual_wait_s = max(0.0, event.ts - row.issued_at)
        elif event.type in ("cancelled", "transferred"):
            open_rows.pop(tkey, None)
    return report


def baselines(out: EstimateOut, state: HallsState, est: Estimator) -> Classic:
    """The classic predictors for an estimate, given what the estimator knows: the learned
    means (counting the services in progress, as its own laws do), and while a business system
    is down, the learned slow-down of service."""
    hall = state.halls.get(out.hall)
    slow = est.slow_factor if hall is not None and outage_end(hall, out.at) else 1.0

    def mean(service: str) -> float:
        return est.mean_service_s(service) * slow

    day = hall.today if hall is not None else None
    est.censoring(est.in_service(hall, day, out.at) if hall and day else None)
    try:
        return classic(state, out.hall, out.ticket, out.at, mean_service_s=mean)
    finally:
        est.censoring(None)


def _row(out: EstimateOut, state: HallsState, est: Estimator) -> Row:
    base = baselines(out, state, est)
    estimates: dict[str, float | None] = {"daemon": out.estimated_wait_s, **base.as_dict()}
    row = Row(out.hall, out.ticket, out.service, out.priority, out.at, estimates)
    row.p10_s, row.p90_s = out.p10_s, out.p90_s
    return row


#: A ticket "waited" when its actual wait was at least this long: the coverage that counts.
WAITED_S = 60.0


def coverage(rows: list[Row]) -> dict[str, float | int | None]:
    """Share of actual waits within the daemon's P10-P90 range, below it, above it: over every
    ticket (`inside`), over those that actually waited a minute or more (`inside_waited`, with
    `below_waited`/`above_waited`: the figure that counts, since most others are called the
    second they are issued and any range holds a 0), and over those told to wait a minute or
    more (`inside_told`)."""
    ranged = [r for r in rows if r.p10_s is not None and r.p90_s is not None]
    if not ranged:
        return {
            "n": 0,
            "inside": None,
            "below": None,
            "above": None,
            "n_waited": 0,
            "inside_waited": None,
            "below_waited": None,
            "above_waited": None,
            "n_told": 0,
            "inside_told": None,
        }

    def split(rs: list[Row]) -> tuple[float | None, float | None, float | None]:
        if not rs:
            return None, None, None
        lo = sum(1 for r in rs if (r.actual_wait_s or 0.0) < (r.p10_s or 0.0))
        hi = sum(1 for r in rs if (r.actual_wait_s or 0.0) > (r.p90_s or 0.0))
        n = len(rs)
        return round((n - lo - hi) / n, 3), round(lo / n, 3), round(hi / n, 3)

    waited = [r for r in ranged if (r.actual_wait_s or 0.0) >= WAITED_S]
    told = [r for r in ranged if (r.estimates.get("daemon") or 0.0) >= WAITED_S]
    inside, below, above = split(ranged)
    w_in, w_lo, w_hi = split(waited)
    return {
        "n": len(ranged),
        "inside": inside,
        "below": below,
        "above": above,
        "n_waited": len(waited),
        "inside_waited": w_in,
        "below_waited": w_lo,
        "above_waited": w_hi,
        "n_told": len(told),
        "inside_told": split(told)[0],
    }


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _round(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def _errors(rows: list[Row], predictor: str) -> dict[str, float | None]:
    """MAE and RASE of one predictor; a missing estimate counts as 0 (no wait predicted)."""
    errs = [(r.estimates.get(predictor) or 0.0) - (r.actual_wait_s or 0.0) for r in rows]
    if not errs:
        return {"n": 0, "mae_s": None, "rase": None}
    mean_actual = _mean([r.actual_wait_s or 0.0 for r in rows]) or 0.0
    rmse = math.sqrt(sum(e * e for e in errs) / len(errs))
    return {
        "n": len(errs),
        "mae_s": _round(sum(abs(e) for e in errs) / len(errs)),
        "rase": _round(rmse / mean_actual, 3) if mean_actual > 0 else None,
    }


# -- the benchmark over simulated profiles --------------------------------------------------------


def simulated_messages(profile: str, seed: int) -> list[tuple[str, bytes]]:
    """A simulated day as (topic, payload bytes), the shape a recorded day replays as."""
    from hallwatch.sensors.profiles import PROFILES
    from hallwatch.sensors.simulator import simulate_day

    day = simulate_day(PROFILES[profile], seed)
    return [(m.topic, json.dumps(m.payload, ensure_ascii=False).encode()) for m in day.messages]


def warmed(profile: str, seed: int) -> Estimator:
    """An estimator as the daemon has it the next morning: it learned from a previous day of
    the hall (the same profile, another seed), kept through its snapshot; the previous day's
    tickets and windows are forgotten."""
    return warmed_on([simulated_messages(profile, seed + 1000)])


def warmed_on(days: Iterable[list[tuple[str, bytes]]], hours: Timetable | None = None) -> Estimator:
    """An estimator that learned from `days` in turn (each a day's messages), kept through its
    snapshot each night: the day's tickets and windows forgotten, what it learned kept;
    `hours`: the halls' `[hours]` (lunch rotations), as the daemon is configured."""
    est = Estimator(hours=hours)
    for messages in days:
        score(messages, estimator=est)
        est = _next_morning(est, hours)
    return est


def _next_morning(est: Estimator, hours: Timetable | None = None) -> Estimator:
    learned = est.learned
    for day_scoped in (learned.pending, learned.last_end, learned.paused_at, learned.call_age):
        day_scoped.clear()
    if learned.forecasts:
        learned.forecasts.clear()
    return Estimator.restore(est.snapshot(), hours=hours)


def bench(profiles: Iterable[str], seeds: Iterable[int], warm: bool = False) -> dict[str, Any]:
    """MAE per predictor and the daemon / best-classic ratio, per profile over the seeds;
    `warm`: the estimator starts from a previous day's learning, as it runs after day one."""
    table: dict[str, Any] = {}
    seeds = list(seeds)
    for name in profiles:
        per_seed = [
            score(
                simulated_messages(name, s), estimator=warmed(name, s) if warm else None
            ).summary()
            for s in seeds
        ]
        mae = {
            p: _mean([x["overall"][p]["mae_s"] for x in per_seed if x["overall"][p]["mae_s"]])
            for p in PREDICTORS
        }
        best = min((v for p, v in mae.items() if p != "daemon" and v is not None), default=None)
        table[name] = {
            "mae_s": {p: _round(v) for p, v in mae.items()},
            "ratio": _round(mae["daemon"] / best, 3) if best and mae["daemon"] else None,
            "seed_ratios": [x["mae_ratio"] for x in per_seed],
            "seeds_over_0.8": sum(1 for x in per_seed if (x["mae_ratio"] or 0) > 0.8),
        }
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score wait estimates on simulated days.")
    parser.add_argument("--profiles", default="normal,peak,outage,quiet")
    parser.add_argument("--seeds", default="1-5", help="e.g. 1-5 or 1,3,7")
    parser.add_argument(
        "--warm", action="store_true", help="start each day from a previous day's learning"
    )
    args = parser.parse_args(argv)
    if "-" in args.seeds:
        lo, hi = args.seeds.split("-")
        seeds = list(range(int(lo), int(hi) + 1))
    else:
        seeds = [int(s) for s in args.seeds.split(",")]
    result = bench(args.profiles.split(","), seeds, warm=args.warm)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
