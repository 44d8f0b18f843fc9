"""The estimator's Prometheus export: estimates, accuracy, staffing and off-peak gauges."""

from __future__ import annotations

from collections.abc import Callable

from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.estimate.advice import Advice
from hallwatch.daemon.estimate.learned import ERROR_BUCKETS, SEP, Learned
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

G = GaugeMetricFamily
Families = tuple[G, G, G, G, G, G, HistogramMetricFamily]


def families() -> Families:
    """The estimator's families, empty, in the order of the exposition."""
    return (
        GaugeMetricFamily(
            "hallwatch_estimated_wait_seconds",
            "Estimated wait of a normal ticket taken now.",
            labels=["hall", "service"],
        ),
        GaugeMetricFamily(
            "hallwatch_estimate_mae_seconds",
            "Rolling mean absolute error of wait estimates (last 200 called tickets).",
            labels=["hall", "service"],
        ),
        GaugeMetricFamily(
            "hallwatch_estimate_bias_seconds",
            "Rolling mean of estimated minus actual wait (last 200 called tickets).",
            labels=["hall", "service"],
        ),
        GaugeMetricFamily(
            "hallwatch_staffing_extra_windows",
            "Extra windows needed to bring the wait under the target.",
            labels=["hall", "service", "goal"],
        ),
        GaugeMetricFamily(
            "hallwatch_closing_overrun_seconds",
            "Extended hours the current queue needs past closing time (0 if none).",
            labels=["hall"],
        ),
        GaugeMetricFamily(
            "hallwatch_offpeak_wait_seconds",
            "Historical mean wait by weekday (0=Monday) and local hour of issue.",
            labels=["hall", "weekday", "hour"],
        ),
        HistogramMetricFamily(
            "hallwatch_estimate_error_seconds",
            "Absolute error of wait estimates, observed when the ticket is called.",
            labels=["hall", "service"],
        ),
    )


def errors_by_hall(learned: Learned) -> dict[str, list[str]]:
    """The keys of `learned.errors`, by hall, in order."""
    out: dict[str, list[str]] = {}
    for key in sorted(learned.errors):
        out.setdefault(key.split(SEP, 1)[0], []).append(key)
    return out


def hall_series(
    fams: Families, learned: Learned, name: str, adv: Advice | None, errors: list[str]
) -> None:
    """One hall's samples into `fams` (as `families()` gives them): its advice (None: no
    estimate, staffing or overrun series), its off-peak table, its error figures (`errors`:
    its keys of `learned.errors`)."""
    est, mae, bias, extra, overrun, offpeak, hist = fams
    if adv is not None:
        for sa in adv.services:
            if sa.estimated_wait_s is not None:
                est.add_metric([name, sa.service], sa.estimated_wait_s)
            extra.add_metric([name, sa.service, "backlog"], sa.extra_backlog)
            extra.add_metric([name, sa.service, "arrivals"], sa.extra_arrivals)
        overrun.add_metric([name], adv.closing_overrun_s)
        table = learned.waits.get(name)
        for wd, hour, mean, _ in table.cells() if table else ():
            offpeak.add_metric([name, str(wd), str(hour)], mean)
    for key in errors:
        errs = learned.errors[key]
        service = key.split(SEP, 1)[1]
        mae.add_metric([name, service], sum(abs(e) for e in errs) / len(errs))
        bias.add_metric([name, service], sum(errs) / len(errs))
        h = learned.hist[key]
        buckets = [(_le(b), h[i]) for i, b in enumerate(ERROR_BUCKETS)]
        buckets.append(("+Inf", h[-1]))
        hist.add_metric([name, service], buckets, h[-2])


def metric_families(
    learned: Learned,
    state: HallsState,
    now: float,
    advice: Callable[[str], Advice | None],
) -> list[Metric]:
    """Gauge families over the live state and what was learned (built afresh each scrape);
    `advice` gives each hall's staffing advice (cached or computed by the caller). A hall no
    longer in the state keeps only its error figures."""
    fams = families()
    errors = errors_by_hall(learned)
    for name in sorted(set(state.halls) | set(errors)):
        adv = advice(name) if name in state.halls else None
        hall_series(fams, learned, name, adv, errors.get(name, []))
    return list(fams)


def _le(bound: float) -> str:
    return str(int(bound)) if bound == int(bound) else str(bound)
