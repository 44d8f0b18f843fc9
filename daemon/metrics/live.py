"""The running daemon's own gauges: the estimator's (kept hall by hall until an event, an
advice or a restore, never while the lane is behind), the estimator lane's and the advice's
back-pressure, the calendar's coverage, complaints refused past the cap."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from time import perf_counter
from typing import Protocol

from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.estimate.advice import Advice
from hallwatch.daemon.estimate.export import Families, errors_by_hall, families, hall_series
from hallwatch.daemon.estimate.model import Estimator
from hallwatch.daemon.metrics.collectors import Settling, writable
from hallwatch.daemon.metrics.exposition import lines_of
from hallwatch.daemon.pipeline.lane import EstimateLane
from hallwatch.daemon.pipeline.process import Pipeline
from hallwatch.daemon.pipeline.schedule import AdviceCache
from hallwatch.daemon.pipeline.turns import Turns, turn_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class _Complaints(Protocol):
    @property
    def over_limit(self) -> int: ...


class Live(Protocol):
    """What the collector reads of the daemon (daemon/main.py `Daemon`)."""

    @property
    def state(self) -> HallsState: ...
    @property
    def estimator(self) -> Estimator: ...
    @property
    def pipeline(self) -> Pipeline: ...
    @property
    def lane(self) -> EstimateLane: ...
    @property
    def calendar(self) -> WorkCalendar: ...
    @property
    def complaints(self) -> _Complaints | None: ...
    @property
    def clock(self) -> Callable[[], float]: ...
    @property
    def _advice(self) -> AdviceCache: ...
    @property
    def turns(self) -> tuple[Turns, ...]: ...

    def advice(self, hall: str, *, fresh: bool = False) -> Advice | None: ...


class _HallText:
    """One hall's estimator series as of its state `version` and its advice object, as text per
    family (exposition.py writes `chunks` as they are; no Sample objects are kept)."""

    __slots__ = ("advice", "chunks", "version")

    def __init__(self, version: int | None, advice: Advice | None, fams: Families) -> None:
        self.version, self.advice = version, advice
        texts = lines_of([(f, [s for s in f.samples if writable(s)]) for f in fams])
        self.chunks = [b"".join(t) for t in texts]


class LiveCollector(Collector):
    """The estimator's families are kept hall by hall: built again for a hall when an event
    reached it (its learned figures move only then) or its advice was renewed, not on every
    scrape (at 500 halls, ~40,000 series, most of them the off-peak tables)."""

    def __init__(self, daemon: Live) -> None:
        self._d = daemon
        self._halls: dict[str, _HallText] = {}
        self._of: tuple[int, int] | None = None  # the state and estimator kept for
        self._settling = Settling()  # `warm`: since when each hall's version and advice held

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def _current(self) -> None:
        d = self._d
        of = (id(d.state), id(d.estimator))
        if of != self._of:
            self._halls.clear()
            self._of = of

    def _hall(self, name: str, errors: dict[str, list[str]], keep: bool) -> _HallText:
        """The hall's text as of now: the kept one, or built (and kept when `keep`)."""
        d = self._d
        version = d.pipeline.changes.version.get(name)
        adv = d.advice(name) if name in d.state.halls else None
        kept = self._halls.get(name)
        if kept is None or kept.version != version or kept.advice is not adv:
            fams = families()
            hall_series(fams, d.estimator.learned, name, adv, errors.get(name, []))
            kept = _HallText(version, adv, fams)
            if keep:
                self._halls[name] = kept
        return kept

    def warm(
        self, budget_s: float, *, settled_s: float = 0.0, timer: Callable[[], float] = perf_counter
    ) -> bool:
        """Build the text of halls whose kept one is out of date, for at most about `budget_s`
        (False when that ran out), as `StateCollector.warm` does: at start-up every hall, then
        on each tick those that have kept their state and advice for `settled_s`."""
        d = self._d
        if d.lane.backlog:  # the learned figures lag the state: nothing to keep yet
            return True
        self._current()
        version = d.pipeline.changes.version
        errors = errors_by_hall(d.estimator.learned)
        until, built = timer() + budget_s, 0
        for name in d.state.halls:
            kept = self._halls.get(name)
            held, adv = d._advice.kept(name)
            if not held:
                continue  # its advice would be a forward simulation: the scrape's to do
            if kept is not None and kept.version == version.get(name) and kept.advice is adv:
                continue
            mark = (version.get(name), id(adv))
            if settled_s and not self._settling.settled(name, mark, d.clock(), settled_s):
                continue
            if built and timer() >= until:
                return False
            self._hall(name, errors, True)
            built += 1
        self._settling.forget(d.state.halls)
        return True

    def _estimator(self) -> list[Metric]:
        d = self._d
        self._current()
        errors = errors_by_hall(d.estimator.learned)
        # While the lane is behind, the learned figures lag the state's version: not kept.
        keep = d.lane.backlog == 0
        out = families()
        for fam in out:
            fam.chunks = []  # type: ignore[attr-defined,union-attr]
        names = sorted(set(d.state.halls) | set(errors))
        for name in names:
            kept = self._hall(name, errors, keep)
            for each, chunk in zip(out, kept.chunks, strict=True):
                each.chunks.append(chunk)  # type: ignore[attr-defined,union-attr]
        if len(self._halls) > len(names):
            for name in set(self._halls) - set(names):
                del self._halls[name]
        return list(out)

    def collect(self) -> Iterator[Metric]:
        d = self._d
        now = d.clock()
        yield from self._estimator()
        yield from d.lane.metrics(now)
        yield from turn_metrics(d.turns)
        yield GaugeMetricFamily(
            "hallwatch_advice_behind",
            "Halls whose staffing advice the last alert tick left older than their state, past "
            "its budget for forward simulations (renewed oldest first on the next ticks).",
            value=d._advice.behind,
        )
        covered = GaugeMetricFamily(
            "hallwatch_calendar_covered",
            "1 if the working-day calendar has the official schedule for the year.",
            labels=["year"],
        )
        year = d.state.business_day(now).year
        for y in (year, year + 1):
            covered.add_metric([str(y)], 1 if y in d.calendar.covered else 0)
        yield covered
        over = CounterMetricFamily(
            "hallwatch_complaints_over_limit",
            "Complaints from the topic not registered: past limits.complaints a hall and day.",
        )
        over.add_metric([], d.complaints.over_limit if d.complaints else 0)
        yield over
