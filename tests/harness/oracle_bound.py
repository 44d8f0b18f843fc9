"""A lower bound on the wait-estimate MAE (issue #17): an oracle that forks the real simulation.

`python -m tests.harness.oracle_bound quiet:1-12 calm:1-12 --forks 201 --jobs 2 --variant both`
(or `--set development` for every development family). For each hall, day 0 (what
`bench estimate` scores) is run event by event (`Hall.step`). Right after a ticket scored by the
bench is issued, the simulation is forked K times: a copy of the queue's state that runs on with
a fresh queue RNG (`random.Random(f"oracle:{family}:{seed}:{ticket}:{k}")`) until the ticket is
first called. The oracle's forecast is the median of the K forked waits (the median minimises
the expected absolute error), scored against the same tickets, the same actual waits and the
same best classic predictor (QL, QL-A, LES, HOL) as the bench's cold daemon, through
`daemon.offline.scoring.score`.

Variants: `strong` keeps everything already scheduled (every future arrival time, the end of
every service in progress, every queued customer's patience, the pauses); `fair` is the same but
redraws the end of each service in progress from its true log-normal law conditioned on having
lasted as long as it has. Both know the true laws, the true arrival curve and the queue's whole
state, which the daemon does not: their MAE bounds any estimator's from below (up to the Monte
Carlo noise of K forks). A scored ticket is one that was called, so a fork conditions on that:
the ticket itself never cancels when its patience runs out (it stays, as a silent leaver).

The door RNG (`Hall.door_rng`) only feeds the door counters (`cross`, `leave`); the queue never
reads it, so forks leave it out. Development seeds only unless a lead runs `--set held_out`.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from statistics import NormalDist
from typing import Any

from hallwatch.daemon.estimate.predictors import NAMES
from hallwatch.daemon.offline.scoring import WAITED_S
from hallwatch.sensors.scenarios import scenario_setup
from hallwatch.sensors.sim_day import epoch
from hallwatch.sensors.sim_hall import Hall, _Visit, _Window, within

from tests.harness.bench_estimate import SEEDS, hall_spec, run_one

VARIANTS = ("strong", "fair")
NORMAL = NormalDist()


# -- forking the simulation -------------------------------------------------------------------


def fork(hall: Hall, rng: random.Random, keep: _Visit | None = None) -> tuple[Hall, _Visit | None]:
    """A copy of `hall`'s queue that runs on with `rng` as its queue RNG, and the copy of `keep`.

    Only what the queue reads or changes is copied: the windows, the queued visits, the events
    scheduled (with the visits and windows they name) and the counters; the recorded messages,
    the door crossings and the finished visits are not (the copy records into empty lists and
    draws its door counters from a throw-away RNG). `keep` never cancels in the copy: when its
    patience runs out it stays in the queue as a silent leaver (it still takes the cancel draw)."""
    memo: dict[int, Any] = {}

    def visit(v: _Visit) -> _Visit:
        got = memo.get(id(v))
        if got is None:
            got = memo[id(v)] = object.__new__(_Visit)
            got.__dict__.update(v.__dict__)
        return got

    def window(w: _Window) -> _Window:
        got = memo.get(id(w))
        if got is None:
            got = memo[id(w)] = object.__new__(_Window)
            got.__dict__.update(w.__dict__)
            got.current = visit(w.current) if w.current is not None else None
        return got

    def arg(x: Any) -> Any:
        return window(x) if isinstance(x, _Window) else visit(x) if isinstance(x, _Visit) else x

    clone = object.__new__(type(hall))
    clone.__dict__.update(hall.__dict__)
    clone.rng, clone.door_rng = rng, random.Random(0)
    clone.raw, clone.crossings = [], []
    clone.visits = list(hall.visits)  # `len` numbers the next visit: FIFO across queues
    clone.numbers = dict(hall.numbers)
    clone.windows = [window(w) for w in hall.windows]
    clone.emergency = window(hall.emergency) if hall.emergency is not None else None
    clone.queues = {k: deque(visit(v) for v in q) for k, q in hall.queues.items()}
    clone.heap = [e if e[3] is None else (e[0], e[1], e[2], arg(e[3])) for e in hall.heap]
    clone.handlers = {
        kind: getattr(clone, f.__name__) if getattr(f, "__self__", None) is hall else f
        for kind, f in hall.handlers.items()
    }
    target = visit(keep) if keep is not None else None
    if target is not None:
        clone.handlers["patience"] = _staying(clone, target, clone.handlers["patience"])
    return clone, target


def _staying(
    hall: Hall, target: _Visit, on_patience: Callable[[float, Any], None]
) -> Callable[[float, Any], None]:
    def handle(t: float, v: Any) -> None:
        if v is not target or not v.in_queue:
            on_patience(t, v)
            return
        v.abandoned, v.left_at = True, t
        hall.rng.random()  # the cancel draw of `Hall._on_patience`, taken and ignored
        hall.leave(t, v.customer)

    return handle


def conditional_duration(
    rng: random.Random, mean: float, sigma: float, elapsed: float, factor: float = 1.0
) -> float:
    """A service's duration drawn from `factor` x log-normal(mean, sigma) (as `sim_hall` draws
    it) conditioned on being at least `elapsed`, by inverse CDF on the upper tail."""
    mu = math.log(mean) - sigma * sigma / 2.0
    a = (math.log(elapsed / factor) - mu) / sigma if elapsed > 0 else -math.inf
    tail = NORMAL.cdf(-a) if a > -math.inf else 1.0  # P(Z >= a)
    u = rng.random()
    while u == 0.0:
        u = rng.random()
    q = tail * u
    if q <= 0.0:  # beyond the float range of the tail: it ends now
        return elapsed
    z = -NORMAL.inv_cdf(q)
    return max(elapsed, factor * math.exp(mu + sigma * z))


def redraw_ends(hall: Hall, now: float, rng: random.Random) -> None:
    """The `fair` variant: every service in progress gets its end redrawn from its true law
    given how long it has lasted; a no-show's fixed wait is kept."""
    p = hall.p
    for i, (_, order, kind, w) in enumerate(hall.heap):
        if kind != "end" or w.current is None or w.current.abandoned:
            continue
        v = w.current
        assert v.called_at is not None
        factor = p.outage_service_factor if within(p.system_outage, v.called_at) else 1.0
        d = conditional_duration(rng, v.spec.mean_s, v.spec.sigma, now - v.called_at, factor)
        hall.heap[i] = (v.called_at + d, order, kind, w)
    hall.heap.sort()  # a sorted list is a heap


def run_until_called(hall: Hall, target: _Visit) -> float | None:
    """Run the copy until `target` is called (its call time) or leaves, or the day ends."""
    while target.in_queue and hall.heap:
        hall.step()
    return target.called_at


def forked_waits(
    hall: Hall, now: float, v: _Visit, name: str, forks: int, variant: str
) -> list[float]:
    """The waits of `v` (issued at `now`) in `forks` copies of `hall`, as the scoring measures
    them (issued -> first called, on the messages' millisecond clock); copies in which it is
    never called are left out."""
    waits: list[float] = []
    for k in range(1, forks + 1):
        rng = random.Random(f"oracle:{name}:{v.ticket}:{k}")
        clone, target = fork(hall, rng, keep=v)
        assert target is not None
        if variant == "fair":
            redraw_ends(clone, now, rng)
        called = run_until_called(clone, target)
        if called is not None:
            waits.append(max(0.0, epoch(hall.p, called) - epoch(hall.p, v.queued_at)))
    return waits


# -- one hall ---------------------------------------------------------------------------------


def hall_tickets(job: tuple[str, int, int, tuple[str, ...]]) -> list[dict[str, Any]]:
    """Every ticket of day 0 of a hall that the bench scores: its actual wait, the cold daemon's
    and the classic predictors' estimates, and the oracle's forecast per variant."""
    family, seed, forks, variants = job
    report = run_one((family, seed, False, 0))
    scored = {r.ticket: r for r in report.scored()}
    profile, sim_seed, cls = scenario_setup(family, seed, 0)
    hall = cls(profile, sim_seed)
    hall.start()
    forecast: dict[str, dict[str, float | None]] = {}
    samples: dict[str, dict[str, list[float]]] = {}
    uncalled: dict[str, int] = {}
    first: dict[str, _Visit] = {}
    while hall.heap:
        now, kind = hall.step()
        if kind != "arrive":
            continue
        v = hall.visits[-1]
        if v.ticket not in scored:
            continue
        first[v.ticket] = v
        if v.called_at is not None:  # called the moment it was issued
            forecast[v.ticket] = {x: 0.0 for x in variants}
            samples[v.ticket] = {x: [0.0] for x in variants}
            continue
        forecast[v.ticket], samples[v.ticket] = {}, {}
        for x in variants:
            waits = forked_waits(hall, now, v, f"{family}:{seed}", forks, x)
            uncalled[x] = uncalled.get(x, 0) + forks - len(waits)
            forecast[v.ticket][x] = statistics.median(waits) if waits else None
            samples[v.ticket][x] = waits
    out = []
    for ticket, row in scored.items():
        v = first[ticket]
        assert v.called_at is not None
        real = epoch(profile, v.called_at) - epoch(profile, v.queued_at)
        assert row.actual_wait_s is not None and abs(real - row.actual_wait_s) < 0.002, ticket
        out.append(
            {
                "family": family,
                "seed": seed,
                "ticket": ticket,
                "actual": row.actual_wait_s,
                "estimates": dict(row.estimates),
                "oracle": forecast[ticket],
                "expected": {
                    x: _expected(row.estimates, forecast[ticket][x], samples[ticket][x])
                    for x in variants
                },
            }
        )
    if out:
        out[0]["uncalled_forks"] = uncalled
    return out


def _expected(
    estimates: dict[str, float | None], oracle: float | None, waits: list[float]
) -> dict[str, float] | None:
    """Each predictor's mean absolute error over the forked waits: its expected error given what
    the variant knows (the forks are draws of the wait under that knowledge)."""
    if not waits:
        return None
    guesses = {**{p: e or 0.0 for p, e in estimates.items()}, "oracle": oracle or 0.0}
    return {p: sum(abs(g - w) for w in waits) / len(waits) for p, g in guesses.items()}


# -- the table --------------------------------------------------------------------------------


def _mae(rows: list[dict[str, Any]], get: Callable[[dict[str, Any]], float | None]) -> float | None:
    """MAE as the scoring computes it: a missing estimate counts as 0."""
    if not rows:
        return None
    return sum(abs((get(r) or 0.0) - r["actual"]) for r in rows) / len(rows)


def figures(rows: list[dict[str, Any]], variants: tuple[str, ...]) -> dict[str, Any]:
    """n, the best classic MAE, the daemon's and each oracle's MAE and ratio, overall and over
    the tickets that waited a minute or more (against the same best classic predictor)."""
    classic = {p: _mae(rows, lambda r, p=p: r["estimates"].get(p)) for p in NAMES}
    have = {p: m for p, m in classic.items() if m is not None}
    best = min(have, key=lambda p: have[p]) if have else None
    waited = [r for r in rows if r["actual"] >= WAITED_S]
    out: dict[str, Any] = {"n": len(rows), "n_waited": len(waited), "best": best}

    def put(subset: list[dict[str, Any]], key: str) -> None:
        b = _mae(subset, lambda r: r["estimates"].get(best)) if best else None
        out[f"best_mae{key}"] = b
        d = _mae(subset, lambda r: r["estimates"].get("daemon"))
        out[f"daemon_mae{key}"] = d
        out[f"daemon_ratio{key}"] = d / b if b and d is not None else None
        for x in variants:
            o = _mae(subset, lambda r, x=x: r["oracle"][x])
            out[f"{x}_mae{key}"] = o
            out[f"{x}_ratio{key}"] = o / b if b and o is not None else None

    put(rows, "")
    put(waited, "_w")
    for x in variants:
        known = [r["expected"][x] for r in rows if r["expected"][x] is not None]
        mean = {p: sum(e[p] for e in known) / len(known) for p in ("daemon", "oracle", best or "")}
        b = mean[best] if best and known else None
        out[f"{x}_exp_best_mae"] = b
        out[f"{x}_exp_daemon_ratio"] = mean["daemon"] / b if b else None
        out[f"{x}_exp_ratio"] = mean["oracle"] / b if b else None
    return out


def _n(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def lines(family: str, label: str, f: dict[str, Any], variants: tuple[str, ...]) -> str:
    cells = [
        f"{family:8} {label:6} {f['n']:5} {f['best'] or '-':5} {_n(f['best_mae'], '7.1f')}",
        f"{_n(f['daemon_mae'], '7.1f')} {_n(f['daemon_ratio'], '6.3f')}",
    ]
    cells += [f"{_n(f[f'{x}_mae'], '7.1f')} {_n(f[f'{x}_ratio'], '6.3f')}" for x in variants]
    cells.append(
        f"| {f['n_waited']:4} {_n(f['best_mae_w'], '7.1f')} {_n(f['daemon_ratio_w'], '6.3f')}"
    )
    cells += [f"{_n(f[f'{x}_ratio_w'], '6.3f')}" for x in variants]
    return " ".join(cells)


def expected_line(family: str, label: str, f: dict[str, Any], variants: tuple[str, ...]) -> str:
    cells = [f"{family:8} {label:6} {f['n']:5} {f['best'] or '-':5}"]
    cells += [
        f"{_n(f[f'{x}_exp_best_mae'], '7.1f')} {_n(f[f'{x}_exp_daemon_ratio'], '6.3f')} "
        f"{_n(f[f'{x}_exp_ratio'], '6.3f')}"
        for x in variants
    ]
    return " ".join(cells)


def header(variants: tuple[str, ...]) -> str:
    h = f"{'family':8} {'seeds':6} {'n':>5} {'best':5} {'b_mae':>7} {'daemon':>7} {'ratio':>6}"
    h += "".join(f" {x:>7} {'ratio':>6}" for x in variants)
    h += f" | {'n_w':>4} {'b_mae_w':>7} {'d_rat_w':>7}" + "".join(
        f" {x[:2] + '_w':>6}" for x in variants
    )
    return h


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.harness.oracle_bound")
    ap.add_argument("halls", nargs="*", help="family:seeds, e.g. quiet:1-12 calm:4,5")
    ap.add_argument("--forks", type=int, default=201, help="K forks per ticket (odd)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--variant", choices=[*VARIANTS, "both"], default="both")
    ap.add_argument("--set", choices=["development", "held_out"], default="development")
    ap.add_argument("--json", type=Path, help="also write the figures and the per-ticket rows")
    args = ap.parse_args(argv)
    variants = VARIANTS if args.variant == "both" else (args.variant,)
    spec = json.loads(SEEDS.read_text(encoding="utf-8"))[args.set]
    batches: list[list[int]] = spec["batches"]
    every = [s for b in batches for s in b]
    wanted = [hall_spec(h) for h in args.halls] or [(f, []) for f in spec["families"]]
    halls = [(f, s) for f, seeds in wanted for s in (seeds or every)]
    started = time.monotonic()
    jobs = [(f, s, args.forks, variants) for f, s in halls]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        per_hall = dict(zip(halls, pool.map(hall_tickets, jobs, chunksize=1), strict=True))
    print(f"oracle bound, day 0, cold daemon, K = {args.forks} forks per ticket")
    print(header(variants))
    table: dict[str, Any] = {}
    for family in dict.fromkeys(f for f, _ in halls):
        seeds = [s for f, s in halls if f == family]
        groups = [[s for s in b if s in seeds] for b in batches]
        groups = [g for g in groups if g] if set(seeds) <= set(every) else [seeds]
        for g in [*groups, seeds] if len(groups) > 1 else groups:
            label = f"{g[0]}-{g[-1]}" if g is not seeds or len(groups) == 1 else "all"
            rows = [r for s in g for r in per_hall[(family, s)]]
            f = figures(rows, variants)
            table[f"{family}/{label}"] = f
            print(lines(family, label, f, variants))
    print()
    print("expected errors over the forked waits (each variant's forks as the wait's law):")
    print(
        f"{'family':8} {'seeds':6} {'n':>5} {'best':5}"
        + "".join(f" {x[:2] + '_bmae':>7} {'daemon':>6} {'oracle':>6}" for x in variants)
    )
    for key, f in table.items():
        family, label = key.split("/")
        print(expected_line(family, label, f, variants))
    uncalled = {
        f"{f}:{s}": rows[0]["uncalled_forks"]
        for (f, s), rows in per_hall.items()
        if rows and any(rows[0]["uncalled_forks"].values())
    }
    if uncalled:
        print(f"forks in which the ticket was never called (left out of its median): {uncalled}")
    print(f"({time.monotonic() - started:.0f} s, {args.jobs} jobs)")
    if args.json:
        tickets = {f"{f}:{s}": rows for (f, s), rows in per_hall.items()}
        body = {"forks": args.forks, "table": table, "tickets": tickets}
        args.json.write_text(json.dumps(body, ensure_ascii=False, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
