"""A metrics registry in which every collector is isolated, so /metrics can never answer 500.

`SafeRegistry` is a `CollectorRegistry` whose `register` wraps each collector (our custom ones,
and the client library's counters and gauges): a collector that raises, or yields a sample the
exposition cannot write (a number too large for a float, a label that is not text), is logged
with a rate limit, counted in `hallwatch_collector_errors_total{collector}`, and left out; the
rest of the scrape is served.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator

from hallwatch.daemon.base.ratelog import RateLimitedLog
from hallwatch.daemon.metrics.exposition import Renderer, plain
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

log = logging.getLogger("hallwatch.metrics")


def writable(sample: Sample) -> bool:
    """Whether the text exposition can write `sample` (it converts, and would raise)."""
    value = sample.value
    if (
        sample.timestamp is None
        and (type(value) is float or (type(value) is int and -(2**53) < value < 2**53))
        and all(type(v) is str for v in sample.labels.values())
    ):
        return True  # the common case, checked fast: 50,000 samples a scrape at 500 halls
    try:
        floatToGoString(sample.value)  # type: ignore[no-untyped-call]
        if sample.timestamp is not None:
            int(float(sample.timestamp) * 1000)
        return all(isinstance(v, str) for v in sample.labels.values())
    except (TypeError, ValueError, OverflowError):
        return False


class _Isolated(Collector):
    def __init__(self, inner: Collector, name: str, registry: SafeRegistry) -> None:
        self.inner = inner
        self.name = name
        self._registry = registry

    def describe(self) -> Iterable[Metric]:
        describe = getattr(self.inner, "describe", None)
        return describe() if describe is not None else ()

    def collect(self) -> Iterable[Metric]:
        try:
            families = list(self.inner.collect())
        except Exception as err:
            self._registry.failed(self.name, f"raised {err!r}", err)
            return []
        for fam in families:
            if getattr(fam, "chunks", None) is not None:
                continue  # its text is already written, so it was writable (exposition.py)
            good = [s for s in fam.samples if writable(s)]
            if len(good) != len(fam.samples):
                dropped = len(fam.samples) - len(good)
                self._registry.failed(self.name, f"{dropped} unwritable samples of {fam.name}")
                fam.samples = good
        return families


class _Errors(Collector):
    def __init__(self, registry: SafeRegistry) -> None:
        self._registry = registry

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterator[Metric]:
        fam = CounterMetricFamily(
            "hallwatch_collector_errors",
            "Scrapes in which a metrics collector failed and was left out.",
            labels=["collector"],
        )
        for name, n in sorted(self._registry.errors.items()):
            fam.add_metric([name], n)
        yield fam


class SafeRegistry(CollectorRegistry):
    """A registry whose collectors each fail alone (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._clock = clock
        self._log = RateLimitedLog(log, 60.0)
        self._wrapped: dict[Collector, _Isolated] = {}
        self._renderer = Renderer()
        self.errors: dict[str, int] = {}
        super().register(_Errors(self))

    def register(self, collector: Collector, name: str | None = None) -> None:
        """Register `collector`, isolated; `name` labels its failures (default: its class and,
        for a client-library metric, the metric's name)."""
        label = name or getattr(collector, "_name", None) or type(collector).__name__
        wrapped = _Isolated(collector, str(label), self)
        super().register(wrapped)
        self._wrapped[collector] = wrapped

    def unregister(self, collector: Collector) -> None:
        super().unregister(self._wrapped.pop(collector))

    def render(self) -> bytes:
        """The text exposition: `generate_latest(self)`'s bytes, built reusing the lines of the
        previous scrape (exposition.py); should that fail, written plainly (`plain`)."""
        try:
            return self._renderer.render(self.collect())
        except Exception as err:
            self.failed("exposition", f"raised {err!r}", err)
            self._renderer = Renderer()
            return plain(self.collect())

    def failed(self, name: str, what: str, err: BaseException | None = None) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1
        self._log.log(
            logging.ERROR, name, self._clock(), "collector %s left out: %s", name, what,
            exc_info=err,
        )  # fmt: skip


class Settling:
    """Per hall, a mark of what its kept metrics text would be built from (its state version,
    its advice) and since when it has been that: a collector's `warm` builds a hall on the tick
    only once its mark has held for `settled_s`, so a hall changing every tick is built by the
    scrape that reads it and not again on every tick."""

    def __init__(self) -> None:
        self._since: dict[str, tuple[object, float]] = {}

    def settled(self, hall: str, mark: object, now: float, settled_s: float) -> bool:
        seen = self._since.get(hall)
        if seen is None or seen[0] != mark:
            self._since[hall] = (mark, now)
            return settled_s <= 0
        return now - seen[1] >= settled_s

    def forget(self, live: Iterable[str]) -> None:
        keep = set(live)
        if len(self._since) > len(keep):
            self._since = {h: v for h, v in self._since.items() if h in keep}
