"""The running daemon's own gauges: the estimator's (kept until an event, an advice or a
restore, never while the lane is behind), the estimator lane's and the advice's back-pressure,
the calendar's coverage, complaints refused past the cap."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.estimate.advice import Advice
from hallwatch.daemon.estimate.model import Estimator
from hallwatch.daemon.metrics.kept import KeptFamilies
from hallwatch.daemon.pipeline.lane import EstimateLane
from hallwatch.daemon.pipeline.process import Pipeline
from hallwatch.daemon.pipeline.schedule import AdviceCache
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

    def advice(self, hall: str, *, fresh: bool = False) -> Advice | None: ...


class LiveCollector(Collector):
    def __init__(self, daemon: Live) -> None:
        self._d = daemon
        self._kept = KeptFamilies()

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        d = self._d
        now = d.clock()
        key = (id(d.state), id(d.estimator), d.pipeline.changes.count, d._advice.generation)
        build = lambda: d.estimator.metrics(d.state, now, d.advice)  # noqa: E731
        yield from self._kept.get(key if d.lane.backlog == 0 else None, build)
        yield from d.lane.metrics(now)
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
