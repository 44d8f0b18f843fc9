"""Tests of estimate.model: the pure wait estimator, its learning, advice and metrics."""

from __future__ import annotations

import math

import pytest
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.estimate.advice import Advice
from hallwatch.daemon.estimate.lognormal import LogNormal
from hallwatch.daemon.estimate.model import ErrorOut, EstimateOut, Estimator
from hallwatch.sensors.events import Event
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.factories import at, issued, ticket_ev, window_ev

T0 = at("2026-11-26T10:00")
# With nothing learned and no prior patience (`PATIENT`: nobody gives up but the learned share,
# a flat no-show curve): no-show share 0.5/10, recall 60 s, gap 10 s, service mean 300 s.
PATIENT = {"prior_patience_s": None}
Q0, RECALL, GAP, MEAN = 0.05, 60.0, 10.0, 300.0
HANDLING = Q0 * RECALL + (1 - Q0) * MEAN + GAP  # 298 s per ticket ahead


def feed(
    est: Estimator, *events: Event, state: HallsState | None = None
) -> tuple[HallsState, list[EstimateOut | ErrorOut]]:
    state = state or HallsState()
    outs: list[EstimateOut | ErrorOut] = []
    for ev in events:
        state.apply(ev)
        outs.extend(est.on_event(ev, state))
    return state, outs


def estimates(outs: list[EstimateOut | ErrorOut]) -> list[EstimateOut]:
    return [o for o in outs if isinstance(o, EstimateOut)]


def residual_by_integration(law: LogNormal, a: float) -> float:
    """E[S - a | S > a] = integral of the survival beyond a, over the survival at a."""
    step, x, total = 0.5, a, 0.0
    while x < 50 * law.mean:
        total += 0.5 * (law.survival(x) + law.survival(x + step)) * step
        x += step
    return total / law.survival(a)


def test_lognormal_mean_and_residual() -> None:
    """The residual matches numerical integration; at a = 0 it is the mean."""
    law = LogNormal(math.log(300.0) - 0.125, 0.5)
    assert law.mean == pytest.approx(300.0)
    assert law.residual(0.0) == pytest.approx(300.0)
    for a in (60.0, 300.0, 900.0):
        assert law.residual(a) == pytest.approx(residual_by_integration(law, a), rel=2e-3)


def test_lognormal_residual_is_finite_far_in_the_tail() -> None:
    """Hours into a 5-minute service the residual stays finite and positive."""
    law = LogNormal(math.log(300.0), 0.3)
    r = law.residual(30000.0)
    assert 0.0 < r < 30000.0


def test_first_in_line_waits_for_the_residual_service() -> None:
    """One window 100 s into a service: the wait is E[S - 100 | S > 100] plus the call gap."""
    est = Estimator(samples=0, **PATIENT)
    _, outs = feed(
        est,
        window_ev("w1", "open", T0 - 3600),
        issued("A001", T0 - 10),
        ticket_ev("called", "A001", T0, window="w1"),
        issued("A002", T0 + 100),
    )
    out = estimates(outs)[-1]
    assert out.position == 0
    assert out.estimated_wait_s == pytest.approx(est.law("gjj").residual(100.0) + GAP)


def test_tickets_ahead_add_their_expected_handling() -> None:
    """Two normal tickets ahead at an idle window: each costs 0.05*60 + 0.95*300 + 10 = 298 s."""
    est = Estimator(samples=0, **PATIENT)
    _, outs = feed(
        est,
        window_ev("w1", "closed", T0 - 3600),
        issued("A001", T0),
        issued("A002", T0 + 1),
        window_ev("w1", "open", T0 + 2),
        issued("A003", T0 + 2),
    )
    out = estimates(outs)[-1]
    assert out.position == 2
    assert out.estimated_wait_s == pytest.approx(2 * HANDLING)


def test_position_follows_the_calling_rules() -> None:
    """Green before appointment before normal; within a class, first issued first."""
    est = Estimator(samples=0)
    _, outs = feed(
        est,
        window_ev("w1", "open", T0 - 3600),
        issued("A001", T0),
        ticket_ev("called", "A001", T0, window="w1"),
        issued("N1", T0 + 1),
        issued("N2", T0 + 2),
        issued("G1", T0 + 3, priority="green"),
        issued("N3", T0 + 4),
        issued("P1", T0 + 5, priority="appointment"),
        issued("G2", T0 + 6, priority="green"),
    )
    pos = {o.ticket: o.position for o in estimates(outs)}
    assert pos == {"A001": 0, "N1": 0, "N2": 1, "G1": 0, "N3": 3, "P1": 1, "G2": 1}


def test_no_open_window_for_the_service_gives_null() -> None:
    """A service no open window serves gets estimated_wait_s None (paused does not count)."""
    est = Estimator()
    _, outs = feed(
        est,
        window_ev("w1", "open", T0, services=("gjj",)),
        window_ev("w2", "paused", T0, services=("loan",)),
        issued("C001", T0 + 5, service="loan"),
    )
    assert estimates(outs)[-1].estimated_wait_s is None


def test_shared_window_splits_its_time() -> None:
    """A window shared with a longer queue of another service delays its tickets."""
    est = Estimator(samples=0)
    _, outs = feed(
        est,
        window_ev("w1", "open", T0, services=("a", "b")),
        window_ev("w2", "open", T0, services=("a",)),
        issued("A1", T0 + 1, service="a"),
        ticket_ev("called", "A1", T0 + 1, window="w1"),
        issued("A2", T0 + 2, service="a"),
        ticket_ev("called", "A2", T0 + 2, window="w2"),
        issued("A3", T0 + 3, service="a"),
        issued("B1", T0 + 4, service="b"),
    )
    # w2 frees first (both just started; w1 one second earlier, so w1 takes A3), then w2 has
    # no b work: B1 waits for w1 to finish A3 as well.
    b1 = estimates(outs)[-1]
    assert b1.position == 1
    assert b1.estimated_wait_s is not None and b1.estimated_wait_s > MEAN


def test_called_ticket_yields_its_error_and_the_mae() -> None:
    """An estimate of 0 s met by a call after 30 s is an error of 30 s, the service's MAE."""
    est = Estimator()
    state, outs = feed(
        est,
        window_ev("w1", "open", T0),
        issued("A001", T0 + 10),
        ticket_ev("called", "A001", T0 + 40, window="w1"),
    )
    assert estimates(outs)[0].estimated_wait_s == 0.0
    assert [o for o in outs if isinstance(o, ErrorOut)] == [ErrorOut("h1", "gjj", 0.0, 30.0)]
    fams = {f.name: f for f in est.metrics(state, T0 + 50)}
    assert fams["hallwatch_estimate_mae_seconds"].samples[0].value == 30.0
    hist = {s.name: s.value for s in fams["hallwatch_estimate_error_seconds"].samples}
    assert hist["hallwatch_estimate_error_seconds_count"] == 1


def test_learns_service_times_and_survives_a_restart() -> None:
    """Completions move the service law; snapshot and restore keep what was learned."""
    est = Estimator()
    events: list[Event] = [window_ev("w1", "open", T0)]
    for i in range(20):
        t = T0 + i * 700
        events += [
            issued(f"A{i:03d}", t),
            ticket_ev("called", f"A{i:03d}", t, window="w1"),
            ticket_ev("completed", f"A{i:03d}", t + 600, window="w1"),
        ]
    feed(est, *events)
    assert est.law("gjj").mean == pytest.approx(600.0, rel=0.1)
    again = Estimator.restore(est.snapshot())
    assert again.law("gjj").mean == pytest.approx(est.law("gjj").mean)
    assert Estimator.restore(b"not json").law("gjj").mean == pytest.approx(MEAN)


# A snapshot as the estimator stored it before estimate.model was split (every field but the
# off-peak table set); stores written by earlier versions must still load, byte for byte.
STORED_SNAPSHOT = (
    b'{"version":1,"learned":{"service_logs":{"gjj":[5.5,6.0]},"recall":[55.0],"gaps":[8.0],'
    b'"pauses":[900.0],"age_bins":[[0,0],[3,1],' + b"[0,0]," * 27 + b'[0,0]],"cancelled":2,'
    b'"no_shows":1,"call_age":{"h1\\u001fA001":300.0},'
    b'"pending":{"h1\\u001fA002":["gjj",610.0,1700000100.0]},'
    b'"errors":{"h1\\u001fgjj":[-20.0,35.5]},'
    b'"hist":{"h1\\u001fgjj":[1.0,2.0,2.0,2.0,2.0,2.0,2.0,2.0,2.0,55.5,2.0]},'
    b'"last_end":{"h1\\u001fW1":1700000200.0},"paused_at":{"h1\\u001fW2":1700000300.0},'
    b'"waits":{}}}'
)


def test_a_stored_snapshot_loads_and_encodes_to_the_same_bytes() -> None:
    """A snapshot stored by an earlier version restores every field and re-encodes unchanged."""
    est = Estimator.restore(STORED_SNAPSHOT)
    L = est.learned
    assert L.service_logs == {"gjj": [5.5, 6.0]}
    assert L.pending["h1\x1fA002"].estimate == 610.0
    assert L.age_bins[1] == [3, 1] and L.cancelled == 2 and L.no_shows == 1
    assert est.rolling_mae("h1", "gjj") == pytest.approx(27.75)
    assert est.snapshot() == STORED_SNAPSHOT


def test_advice_extra_windows_and_closing_overrun() -> None:
    """20 tickets at one idle window at 16:30: 20 x 298 s clears 4160 s after 17:00."""
    now = at("2026-11-26T16:30")
    est = Estimator(samples=0, **PATIENT)
    events: list[Event] = [window_ev("w1", "open", now - 7200)]
    events += [issued(f"A{i:03d}", now - 20 + i) for i in range(20)]
    state, _ = feed(est, *events)
    adv = est.advice(state, "h1", now)
    assert isinstance(adv, Advice)
    assert adv.clear_at == pytest.approx(now + 20 * HANDLING)
    assert adv.closing_overrun_s == pytest.approx(20 * HANDLING - 1800.0)
    assert adv.projected_overrun_s >= adv.closing_overrun_s
    (sa,) = adv.services
    assert sa.waiting == 20 and sa.extra_backlog >= 1 and sa.extra_arrivals >= 1
    with_extra = est.wait_for_new(state, "h1", "gjj", now, ["gjj"] * (sa.extra_backlog + 1))
    before = est.wait_for_new(state, "h1", "gjj", now, ["gjj"] * sa.extra_backlog)
    assert before is not None and before <= est.target_wait_s
    assert with_extra is not None and with_extra <= before


def test_no_overrun_when_the_queue_is_empty() -> None:
    """An empty hall needs no extended hours and no extra windows."""
    est = Estimator()
    state, _ = feed(est, window_ev("w1", "open", T0))
    adv = est.advice(state, "h1", T0)
    assert adv.closing_overrun_s == 0.0
    assert adv.services[0].extra_backlog == 0 and adv.services[0].extra_arrivals == 0


def test_metrics_families() -> None:
    """The collector exposes the estimate, staffing and closing families with their labels."""
    est = Estimator()
    state, _ = feed(est, window_ev("w1", "open", T0), issued("A001", T0 + 1))
    fams = {f.name: f for f in est.metrics(state, T0 + 2)}
    assert fams["hallwatch_estimated_wait_seconds"].samples[0].labels == {
        "hall": "h1",
        "service": "gjj",
    }
    goals = {s.labels["goal"] for s in fams["hallwatch_staffing_extra_windows"].samples}
    assert goals == {"backlog", "arrivals"}
    assert fams["hallwatch_closing_overrun_seconds"].samples[0].value == 0.0


@settings(max_examples=40, deadline=None)
@example(  # found by hypothesis on the code before #12 too: 203 s -> 215 s for a `b` ticket
    n_windows=3,
    shares=[("b",), ("a", "b"), ("a",), ("a",)],
    waiting=[("a", "normal"), ("a", "normal")],
    busy=[0, 0, 42],
)
@example(  # found by hypothesis: a `b` window opening moved `a`'s 1,256 s to 1,344 s, through the
    # arrivals' service draws indexed across classes (a class's count shifted the others')
    n_windows=3,
    shares=[("a",), ("a",), ("b",), ("b",)],
    waiting=[
        ("a", "normal"),
        ("a", "normal"),
        ("a", "green"),
        ("b", "green"),
        ("a", "appointment"),
        ("a", "appointment"),
    ],
    busy=[0, 0, 0],
)
@given(
    n_windows=st.integers(1, 3),
    shares=st.lists(st.sampled_from([("a",), ("b",), ("a", "b")]), min_size=4, max_size=4),
    waiting=st.lists(
        st.tuples(st.sampled_from("ab"), st.sampled_from(["normal", "green", "appointment"])),
        max_size=12,
    ),
    busy=st.lists(st.integers(0, 900), min_size=3, max_size=3),
)
def test_more_open_windows_never_raise_an_estimate(
    n_windows: int,
    shares: list[tuple[str, ...]],
    waiting: list[tuple[str, str]],
    busy: list[int],
) -> None:
    """Opening one more window (any services) never makes a new ticket's estimate longer, up
    to a small scheduling anomaly of the sampled runs: with identical random draws, a ticket
    called sooner is less likely to have given up (no-show/cancel depend on its wait at the
    call), so it may cost a full service instead of a recall (e.g. 400 s -> 411 s), and tickets
    of another service move between windows (203 s -> 215 s, the example above; the mean-value
    run gives 250 s in both). 2,500 random cases outside hypothesis showed no increase at all."""
    est = Estimator()
    events: list[Event] = []
    for i in range(n_windows):
        events.append(window_ev(f"w{i}", "open", T0 - 3600, services=shares[i]))
        events.append(issued(f"S{i}", T0 - busy[i] - 5, service=shares[i][0]))
        events.append(ticket_ev("called", f"S{i}", T0 - busy[i], window=f"w{i}"))
    for j, (service, prio) in enumerate(waiting):
        events.append(issued(f"Q{j:02d}", T0 + j, service=service, priority=prio))
    state, _ = feed(est, *events)
    now = T0 + 60
    before = {s: est.wait_for_new(state, "h1", s, now) for s in "ab"}
    feed(est, window_ev("wx", "open", now, services=shares[3]), state=state)
    after = {s: est.wait_for_new(state, "h1", s, now) for s in "ab"}
    for s in "ab":
        if before[s] is not None:
            assert after[s] is not None and after[s] <= 1.07 * before[s] + 1e-6


def test_events_for_tickets_the_state_does_not_hold_are_ignored() -> None:
    """`on_event` never raises for a ticket missing from the hall's day (refused as stale or
    over a cap, or the lane running behind across midnight): it returns nothing and learns
    nothing."""
    est = Estimator()
    t0 = at("2026-11-27T09:00")
    state, _ = feed(est, window_ev("w1", "open", t0), issued("A1", t0 + 1))
    before = est.snapshot()
    yesterday = at("2026-11-26T16:00")
    for kind in ("issued", "called", "completed", "no_show", "cancelled", "transferred"):
        for ticket, ts in (("Z9", t0 + 5), ("A1", yesterday), ("A7", yesterday)):
            ev = ticket_ev(kind, ticket, ts, window="w1", service="gjj")
            assert est.on_event(ev, state) == []
    assert est.snapshot() == before


@pytest.mark.parametrize("open_windows", [0, 2])
def test_advice_and_estimates_have_a_bounded_cost_for_a_huge_queue(open_windows: int) -> None:
    """5,000 waiting tickets (a flood, or a backlog after a restart) get staffing advice and an
    estimate in well under a second: past a bound the estimator uses the queue-length formula
    instead of simulating every ticket and the arrivals expected until closing."""
    import time

    from hallwatch.daemon.core.state import Limits

    state = HallsState(limits=Limits(tickets=6000))
    t0 = at("2026-11-26T10:00")
    services = ("提取", "缴存", "贷款", "转移")
    for i in range(5000):
        prio = ("normal", "green", "appointment")[i % 3]
        state.apply(issued(f"A{i}", t0 + i * 0.001, services[i % 4], prio))
    for w in range(open_windows):
        state.apply(window_ev(f"w{w}", "open", t0 + 6, ("提取", "缴存")))
    est = Estimator()
    started = time.perf_counter()
    adv = est.advice(state, "h1", t0 + 10)
    ev = issued("B1", t0 + 11, "提取")
    state.apply(ev)
    (out,) = estimates(est.on_event(ev, state))
    assert time.perf_counter() - started < 1.0
    first = next(sa for sa in adv.services if sa.service == "提取")
    assert first.waiting == 1250 and first.extra_backlog == est.max_extra_windows
    if open_windows:
        assert out.position == 1250 and out.estimated_wait_s is not None
        assert out.estimated_wait_s > est.target_wait_s
    else:
        assert out.estimated_wait_s is None and first.estimated_wait_s is None


def test_restored_estimator_estimates_as_the_live_one() -> None:
    """After no-shows and then completions, an estimator restored from its snapshot gives the
    same no-show curve and estimates as the one that learned live (the curve was cached and
    kept stale when only completions moved its bins: a restart changed the estimates, found by
    the simulation test as an alert the twin did not send)."""
    est = Estimator()
    state, _ = feed(est, window_ev("w1", "open", T0 - 3600))
    for i in range(30):
        t = T0 + i * 400
        kind = "no_show" if i < 6 else "completed"
        feed(
            est,
            issued(f"A{i}", t),
            ticket_ev("called", f"A{i}", t + 60 + 20 * (i % 7), window="w1"),
            ticket_ev(kind, f"A{i}", t + 300, window="w1"),
            state=state,
        )
        est.no_show_p(600.0)  # the curve is used between events, as ticks and estimates do
    restored = Estimator.restore(est.snapshot())
    ages = (0.0, 100.0, 900.0, 4000.0)
    assert [est.no_show_p(a) for a in ages] == [restored.no_show_p(a) for a in ages]
    now = T0 + 30 * 400
    feed(est, issued("B1", now - 5), issued("B2", now - 4), state=state)
    assert est.wait_for_new(state, "h1", "gjj", now) == restored.wait_for_new(
        state, "h1", "gjj", now
    )
