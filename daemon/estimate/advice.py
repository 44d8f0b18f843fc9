"""Staffing advice: extra windows per service and the closing-time overrun.

What a service needs (`extra_backlog`, `extra_arrivals`) is the estimator's figure; what the hall
is advised to open (`windows`) is bounded by the hall: no more windows in all than it has and
has not opened, none when nobody waits or when the hall closes before a window could be staffed.
When even every one of them cannot clear the queue by closing, `all_open_overrun_s` says by how
much (then the plan's other actions: extended hours, appointments).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace

from hallwatch.daemon.core.state import WAITING, Day, Hall, HallsState
from hallwatch.daemon.estimate import erlang as staffing
from hallwatch.daemon.estimate import quickwait
from hallwatch.daemon.estimate.forecast import Forecaster
from hallwatch.daemon.estimate.predictors import abandonment_rate
from hallwatch.daemon.estimate.simulation import Win, finish

# A window advised now must be staffed and open before closing to help: within this of closing
# time (the simulated hall's staffing delay is 10 minutes) no windows are advised.
OPENING_LEAD_S = 900.0


@dataclass(frozen=True, slots=True)
class ServiceAdvice:
    """What one service needs: its queue, a new ticket's wait, the windows to add."""

    service: str
    waiting: int
    estimated_wait_s: float | None  # a normal ticket taken now
    extra_backlog: int  # windows to add so that wait is under the target
    extra_arrivals: int  # windows to add so the current arrival rate is held under the target
    windows: int = 0  # what is advised: the need, within the hall's spare windows (see module)
    # The 10th and 90th percentiles of the runs behind `estimated_wait_s` (`ranges`); None
    # without runs (quick mode).
    spread: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Advice:
    """A hall's staffing advice at one moment, per service, and its closing-time overrun."""

    hall: str
    at: float
    target_wait_s: float
    services: tuple[ServiceAdvice, ...]
    closing_at: float
    clear_at: float | None  # when the current queue is served, at the current staffing
    closing_overrun_s: float  # extended hours (延时服务) the current queue needs
    projected_overrun_s: float  # the same, with the expected arrivals until closing
    spare_windows: int = 0  # windows the hall has that are not open now
    # The overrun of the current queue even with every spare window open: > 0, windows alone
    # cannot clear it by closing (extended hours, appointments).
    all_open_overrun_s: float = 0.0


def counters(hall: Hall) -> int:
    """The windows a hall has: those known from window events, or its window terminals when
    more of them are known (a counter's terminal is online before its window first opens)."""
    terminals = sum(1 for d in hall.devices.values() if d.kind == "window_terminal")
    return max(len(hall.windows), terminals)


def spare_windows(hall: Hall) -> int:
    """Windows the hall has that are not open now: the most that can be added."""
    return max(0, counters(hall) - sum(1 for w in hall.windows.values() if w.state == "open"))


def share_out(need: dict[str, int], spare: int) -> dict[str, int]:
    """`spare` windows given to the services that need them, one at a time to the one that
    still needs the most (ties by name); each gets at most its need."""
    got = dict.fromkeys(need, 0)
    for _ in range(min(spare, sum(need.values()))):
        s = min((s for s in need if need[s] > got[s]), key=lambda s: (got[s] - need[s], s))
        got[s] += 1
    return got


# One forward simulation (or a few): what `advise_steps` does between two of its yields.
Steps = Generator[None, None, "Advice"]


def advise(
    est: Forecaster,
    state: HallsState,
    hall: str,
    now: float,
    *,
    target_wait_s: float,
    max_extra_windows: int,
) -> Advice:
    """Extra windows per service (backlog, arrivals) and the closing-time overrun, against the
    target wait, adding at most `max_extra_windows` windows per service."""
    return run_steps(advise_steps(est, state, hall, now, target_wait_s, max_extra_windows))


def run_steps(steps: Steps) -> Advice:
    """`advise_steps` run to its end at once."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            advice: Advice = done.value
            return advice


def advise_steps(
    est: Forecaster,
    state: HallsState,
    hall: str,
    now: float,
    target_wait_s: float,
    max_extra_windows: int,
) -> Steps:
    """`advise`, yielding after each forward simulation (a few ms each; 30-80 ms in all for a
    busy hall): the daemon computes advice on its event loop a slice at a time, and ingest goes
    on between slices. The state may change between two steps (ingest applies events
    meanwhile): each step reads the hall as it is then, so the advice is that of the state over
    the few milliseconds it took, like any sensor's reading."""
    h = state.halls.get(hall) or Hall()
    day = state.day_at(h, now) or Day(day=state.business_day(now))
    closing = est.closing_ts(now, hall)  # the hall's own ([hours])
    services = sorted(
        {s for w in h.windows.values() for s in w.services}
        | {t.service for t in day.tickets.values() if t.service and t.status == WAITING}
    )
    rates = est.arrival_rates(day, now)
    by_service = {s: sum(r for (x, _), r in rates.items() if x == s) for s in services}
    theta = abandonment_rate(day, now)
    queue = est.queue_items(day, now, None)
    span = max(0.0, min(closing, now + 3 * 3600.0) - now)
    # Past SIM_MAX_ITEMS tickets to simulate, closed forms: a tick's cost stays bounded.
    quick = len(queue) + sum(rates.values()) * span > quickwait.SIM_MAX_ITEMS
    waiting: dict[str, int] = {}
    for it in queue:
        waiting[it.service] = waiting.get(it.service, 0) + 1
    out = []
    for s in services:
        cycle = est.law(s).mean + est.gap_s
        if quick:
            ahead = waiting.get(s, 0)
            serving = sum(1 for w in h.windows.values() if w.state == "open" and s in w.services)
            wait = quickwait.queue_wait(ahead, serving, cycle)
            extra = quickwait.extra_windows(ahead, serving, cycle, target_wait_s, max_extra_windows)
            spread = None
        else:
            wait, spread, extra = yield from _search_extra(
                est, state, hall, s, now, target_wait_s, max_extra_windows
            )
        share = _capacity_share(h, s, by_service)
        arrivals = staffing.extra_for_arrivals(
            by_service[s], cycle, share, target_wait_s, abandon_rate=theta
        )
        out.append(ServiceAdvice(s, waiting.get(s, 0), wait, extra, arrivals, spread=spread))
    windows = est.windows_at(hall, h, day, now)
    spare = spare_windows(h)
    # Every spare window open, each serving every service waiting: the best the hall can do.
    everyone = tuple(sorted(services))
    all_open = windows + [Win(f"+{i}", everyone, now) for i in range(spare)]
    if quick:
        work = sum(est.law(it.service).mean + est.gap_s for it in queue)
        more = sum(r * span * (est.law(k[0]).mean + est.gap_s) for k, r in rates.items())
        clear = quickwait.finish_at(now, work, len(windows))
        projected = quickwait.finish_at(now, work + more, len(windows))
        best = quickwait.finish_at(now, work, len(all_open))
    else:
        clear = finish(windows, queue, est.handling)
        yield
        projected = finish(windows, queue + est.arrivals(day, now, 3, hall), est.handling)
        yield
        best = finish(all_open, queue, est.handling) if spare else clear
    helps = bool(queue) and closing - now >= OPENING_LEAD_S
    need = {sa.service: max(sa.extra_backlog, sa.extra_arrivals) if helps else 0 for sa in out}
    got = share_out(need, spare)
    return Advice(
        hall,
        now,
        target_wait_s,
        tuple(replace(sa, windows=got[sa.service]) for sa in out),
        closing,
        clear,
        staffing.closing_overrun(clear, closing),
        staffing.closing_overrun(projected, closing),
        spare,
        staffing.closing_overrun(best, closing) if queue else 0.0,
    )


def _search_extra(
    est: Forecaster,
    state: HallsState,
    hall: str,
    service: str,
    now: float,
    target_wait_s: float,
    max_extra_windows: int,
) -> Generator[None, None, tuple[float | None, tuple[float, float] | None, int]]:
    """A new ticket's wait and its runs' spread, and the fewest extra windows that bring it
    under the target."""
    wait = est.wait_for_new(state, hall, service, now)
    spread = est.last_spread
    yield
    extra = 0
    while extra < max_extra_windows and (wait is None or wait > target_wait_s):
        extra += 1
        # The search only needs the mean-value run: sampling each step would cost
        # up to max_extra_windows x samples runs per service on every tick.
        wait_k = est.wait_for_new(state, hall, service, now, [service] * extra, samples=0)
        yield
        if wait_k is not None and wait_k <= target_wait_s:
            break
    return wait, spread, extra


def _capacity_share(hall: Hall, service: str, load: dict[str, float]) -> float:
    """Open windows' capacity for `service`, a shared window split by its services' loads."""
    share = 0.0
    for w in hall.windows.values():
        if w.state != "open" or service not in w.services:
            continue
        total = sum(load.get(s, 0.0) for s in w.services)
        share += load.get(service, 0.0) / total if total > 0 else 1.0 / len(w.services)
    return share
