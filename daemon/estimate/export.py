"""The estimator's Prometheus export: estimates, accuracy, staffing and off-peak gauges."""

from __future__ import annotations

from collections.abc import Callable

from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.estimate.advice import Advice
from hallwatch.daemon.estimate.learned import ERROR_BUCKETS, SEP, Learned
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric


def metric_families(
    learned: Learned,
    state: HallsState,
    now: float,
    advice: Callable[[str], Advice | None],
) -> list[Metric]:
    """Gauge families over the live state and what was learned (built afresh each scrape);
    `advice` gives each hall's staffing advice (cached or computed by the caller)."""
    est = GaugeMetricFamily(
        "hallwatch_estimated_wait_seconds",
        "Estimated wait of a normal ticket taken now.",
        labels=["hall", "service"],
    )
    mae = GaugeMetricFamily(
        "hallwatch_estimate_mae_seconds",
        "Rolling mean absolute error of wait estimates (last 200 called tickets).",
        labels=["hall", "service"],
    )
    extra = GaugeMetricFamily(
        "hallwatch_staffing_extra_windows",
        "Extra windows needed to bring the wait under the target.",
        labels=["hall", "service", "goal"],
    )
    overrun = GaugeMetricFamily(
        "hallwatch_closing_overrun_seconds",
        "Extended hours the current queue needs past closing time (0 if none).",
        labels=["hall"],
    )
    offpeak = GaugeMetricFamily(
        "hallwatch_offpeak_wait_seconds",
        "Historical mean wait by weekday (0=Monday) and local hour of issue.",
        labels=["hall", "weekday", "hour"],
    )
    bias = GaugeMetricFamily(
        "hallwatch_estimate_bias_seconds",
        "Rolling mean of estimated minus actual wait (last 200 called tickets).",
        labels=["hall", "service"],
    )
    hist = HistogramMetricFamily(
        "hallwatch_estimate_error_seconds",
        "Absolute error of wait estimates, observed when the ticket is called.",
        labels=["hall", "service"],
    )
    for name in sorted(state.halls):
        adv = advice(name)
        if adv is None:
            continue
        for sa in adv.services:
            if sa.estimated_wait_s is not None:
                est.add_metric([name, sa.service], sa.estimated_wait_s)
            extra.add_metric([name, sa.service, "backlog"], sa.extra_backlog)
            extra.add_metric([name, sa.service, "arrivals"], sa.extra_arrivals)
        overrun.add_metric([name], adv.closing_overrun_s)
        table = learned.waits.get(name)
        for wd, hour, mean, _ in table.cells() if table else ():
            offpeak.add_metric([name, str(wd), str(hour)], mean)
    for key, errs in sorted(learned.errors.items()):
        hall, service = key.split(SEP, 1)
        mae.add_metric([hall, service], sum(abs(e) for e in errs) / len(errs))
        bias.add_metric([hall, service], sum(errs) / len(errs))
        h = learned.hist[key]
        buckets = [(_le(b), h[i]) for i, b in enumerate(ERROR_BUCKETS)]
        buckets.append(("+Inf", h[-1]))
        hist.add_metric([hall, service], buckets, h[-2])
    return [est, mae, bias, extra, overrun, offpeak, hist]


def _le(bound: float) -> str:
    return str(int(bound)) if bound == int(bound) else str(bound)
