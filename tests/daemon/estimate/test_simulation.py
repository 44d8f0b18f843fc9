"""The forward simulation's queues: built once per estimate, the same as sorting every run."""

from __future__ import annotations

import os
import subprocess
import sys

from hallwatch.daemon.estimate.simulation import (
    Classes,
    Item,
    Queues,
    poisson_arrivals,
    queues_of,
)
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT

NOW = 1_000_000.0


def _key(queues: Queues) -> dict[tuple[str, int], list[int]]:
    return {k: [id(it) for it in q] for k, q in queues.items() if q}


@given(
    queued=st.lists(
        st.tuples(st.sampled_from("ab"), st.integers(0, 2), st.integers(-600, 0)), max_size=15
    ),
    later=st.booleans(),
    seed=st.integers(0, 10**6),
)
def test_queues_with_arrivals_equal_sorting_the_run(
    queued: list[tuple[str, int, int]], later: bool, seed: int
) -> None:
    """Each class's queue from `Classes.with_arrivals` (queued tickets sorted once, then the
    run's arrivals) holds the same items in the same order as sorting queued tickets and
    arrivals together, ties included; also when a queued ticket is stamped after `now`."""
    items = [Item(s, r, NOW + dt, -dt) for s, r, dt in queued]
    if later:
        items.append(Item("a", 1, NOW + 30.0, 0.0))
    items.append(Item("a", 2, NOW, 0.0, target=True))
    rates = [(("a", 0), 0.01), (("b", 1), 0.02), (("a", 1), 0.005)]
    classes = Classes(items, NOW)
    assert classes.sorted_before is not later
    for r in range(3):
        arrivals = poisson_arrivals(rates, NOW, NOW + 3600.0, f"{seed}:{r}")
        got = classes.with_arrivals(arrivals)
        assert _key(got) == _key(queues_of(items + arrivals))


_SEEDED = """
import json
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.estimate.model import Estimator, EstimateOut
from tests.factories import at, issued, window_ev

T = at("2026-11-26T10:00")
state, est = HallsState(), Estimator()
events = [window_ev("w1", "open", T, services=("提取", "贷款", "缴存", "查询"))]
for i in range(12):  # tickets of four services issued at the same instants
    for s in ("提取", "贷款", "缴存", "查询"):
        events.append(issued(f"{s}{i}", T + 60 + i, service=s))
out = []
for ev in events:
    state.apply(ev)
    out += [(o.ticket, o.position, o.estimated_wait_s)
            for o in est.on_event(ev, state) if isinstance(o, EstimateOut)]
print(json.dumps(out, ensure_ascii=False))
"""


def test_estimates_do_not_depend_on_the_hash_seed() -> None:
    """Tickets of four services issued at the same instants, one window serving all: every
    estimate (position and wait) is the same under different PYTHONHASHSEED values (the order
    of a window's services once followed the interpreter's hash seed)."""
    outs = set()
    for seed in ("1", "2", "3", "4", "5"):
        p = subprocess.run(
            [sys.executable, "-c", _SEEDED],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        outs.add(p.stdout)
    assert len(outs) == 1, outs


def test_a_class_rate_moves_no_other_class_arrivals_or_draws() -> None:
    """Doubling one class's rate (a lone window's service gains a second window) leaves every
    other class's arrivals with the same times and the same service draws (`idx`)."""
    slow = [(("a", 0), 0.004), (("b", 0), 0.01), (("a", 1), 0.002)]
    fast = [(("a", 0), 0.004), (("b", 0), 0.02), (("a", 1), 0.002)]
    before = poisson_arrivals(slow, NOW, NOW + 7200.0, "s:0", 5)
    after = poisson_arrivals(fast, NOW, NOW + 7200.0, "s:0", 5)

    def of_a(items: list[Item]) -> list[tuple[int, float, int]]:
        return sorted((it.rank, it.issued_at, it.idx) for it in items if it.service == "a")

    assert of_a(before) and of_a(before) == of_a(after)
    assert len([it for it in after if it.service == "b"]) > len(
        [it for it in before if it.service == "b"]
    )
    every = [it.idx for it in after]
    assert len(set(every)) == len(every) and min(every) >= 5
