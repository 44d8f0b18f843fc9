"""Does a PromQL query count an HA pair twice? A promtool unit test file that answers it for many
queries at once (tests/test_prometheus.py runs it).

The input is what Prometheus scrapes from a pair (deploy/ha): both instances report every
hall's figures and the shared outbox alike (PAIR), and only one of them has done any work of
its own (its events, notifications, reconnects: PER_INSTANCE). Each query is then compared, by
PromQL itself, with the same query restricted to that one instance: the values of the series
must be equal and so must their number. A `sum` over both instances doubles the value; a
query that keeps `instance` returns each series twice; either fails.
"""

from __future__ import annotations

import json
import re

INSTANCES = ("hw_a", "hw_b")

#: What an instance does itself: counted per instance, summed over a pair on purpose.
PER_INSTANCE = frozenset(
    {
        "hallwatch_events_total",
        "hallwatch_events_rejected_total",
        "hallwatch_event_lag_seconds",
        "hallwatch_event_ts_in_future_total",
        "hallwatch_events_over_limit_total",
        "hallwatch_store_batch_events",
        "hallwatch_store_commit_seconds",
        "hallwatch_mqtt_connected",
        "hallwatch_mqtt_reconnects_total",
        "hallwatch_state_errors_total",
        "hallwatch_restore_seconds",
        "hallwatch_restore_replayed_events",
        "hallwatch_notifications_total",
        "hallwatch_outbox_dead_letters_total",
        "hallwatch_outputs_published_total",
        "hallwatch_outputs_dropped_total",
    }
)

H = 'job="hallwatch",hall="h1"'
# (series selector without instance, promtool values): gauges hold, counters grow.
SERIES: tuple[tuple[str, str], ...] = (
    (f"hallwatch_hall_headcount{{{H}}}", "25x40"),
    (f"hallwatch_hall_headcount_peak{{{H}}}", "31x40"),
    (f'hallwatch_queue_waiting{{{H},service="提取",priority="green"}}', "2x40"),
    (f'hallwatch_queue_waiting{{{H},service="提取",priority="normal"}}', "9x40"),
    (f'hallwatch_queue_waiting{{{H},service="贷款",priority="normal"}}', "4x40"),
    (f'hallwatch_queue_oldest_wait_seconds{{{H},service="提取"}}', "1500x40"),
    (f'hallwatch_estimated_wait_seconds{{{H},service="提取"}}', "1300x40"),
    (f'hallwatch_estimated_wait_seconds{{{H},service="贷款"}}', "600x40"),
    (f'hallwatch_estimate_mae_seconds{{{H},service="提取"}}', "120x40"),
    (f"hallwatch_wait_mean_seconds_today{{{H}}}", "700x40"),
    (f"hallwatch_windows_open{{{H}}}", "5x40"),
    (f"hallwatch_windows_emergency_open{{{H}}}", "0x40"),
    (f'hallwatch_alerts_firing{{{H},level="1"}}', "2x40"),
    (f'hallwatch_system_state{{{H},system="core",state="down"}}', "1x40"),
    (f'hallwatch_system_state{{{H},system="core",state="degraded"}}', "0x40"),
    (f'hallwatch_system_state{{{H},system="core",state="up"}}', "0x40"),
    (f'hallwatch_device_up{{{H},device="dc-d1",kind="door_counter"}}', "1x40"),
    (f'hallwatch_device_up{{{H},device="dc-d2",kind="door_counter"}}', "0x40"),
    (f'hallwatch_staffing_extra_windows{{{H},service="提取",goal="backlog"}}', "2x40"),
    (f"hallwatch_closing_overrun_seconds{{{H}}}", "900x40"),
    (f"hallwatch_complaints_open{{{H}}}", "3x40"),
    (f"hallwatch_complaints_due_soon{{{H}}}", "1x40"),
    (f"hallwatch_complaints_overdue{{{H}}}", "1x40"),
    (f"hallwatch_complaints_registered{{{H}}}", "4x40"),
    (f'hallwatch_tickets_today{{{H},event="issued"}}', "300x40"),
    (f"hallwatch_hall_last_event_timestamp_seconds{{{H}}}", "0x40"),
    (f'hallwatch_estimate_error_seconds_bucket{{{H},le="60"}}', "0+2x40"),
    (f'hallwatch_estimate_error_seconds_bucket{{{H},le="600"}}', "0+5x40"),
    (f'hallwatch_estimate_error_seconds_bucket{{{H},le="+Inf"}}', "0+6x40"),
    ('hallwatch_outbox_depth{job="hallwatch"}', "3x40"),
    ('hallwatch_outbox_oldest_pending_seconds{job="hallwatch"}', "400x40"),
    ('hallwatch_events_total{job="hallwatch",result="accepted"}', "0+50x40"),
    ('hallwatch_events_total{job="hallwatch",result="rejected"}', "0+5x40"),
    ('hallwatch_events_rejected_total{job="hallwatch",reason="bad_json"}', "0+5x40"),
    ('hallwatch_event_lag_seconds_bucket{job="hallwatch",le="0.1"}', "0+40x40"),
    ('hallwatch_event_lag_seconds_bucket{job="hallwatch",le="+Inf"}', "0+50x40"),
    ('hallwatch_store_commit_seconds_bucket{job="hallwatch",le="0.01"}', "0+9x40"),
    ('hallwatch_store_commit_seconds_bucket{job="hallwatch",le="+Inf"}', "0+10x40"),
    ('hallwatch_store_batch_events_sum{job="hallwatch"}', "0+50x40"),
    ('hallwatch_store_batch_events_count{job="hallwatch"}', "0+10x40"),
    ('hallwatch_mqtt_connected{job="hallwatch"}', "1x40"),
    ('hallwatch_mqtt_reconnects_total{job="hallwatch"}', "0+1x40"),
    ('hallwatch_state_errors_total{job="hallwatch"}', "0+1x40"),
    ('hallwatch_restore_seconds{job="hallwatch"}', "2x40"),
    ('hallwatch_notifications_total{job="hallwatch",channel="wecom",result="sent"}', "0+2x40"),
    ('hallwatch_notifications_total{job="hallwatch",channel="wecom",result="failed"}', "0+1x40"),
    ('hallwatch_outbox_dead_letters_total{job="hallwatch"}', "0+1x40"),
    ('up{job="hallwatch"}', "1x40"),
)

_NAME = re.compile(r"(?<![\w:])(hallwatch_[a-z_]+)(?![\w:])(\{[^}]*\})?")


def base(name: str) -> str:
    """The metric a sample name belongs to (a histogram's _bucket, _sum, _count: the histogram)."""
    return name if name in PER_INSTANCE else re.sub(r"_(bucket|sum|count)$", "", name)


def input_series() -> list[dict[str, str]]:
    """Both instances for what a pair reports alike (and `up`), the first only for its work."""
    out = []
    for selector, values in SERIES:
        name, _, labels = selector.partition("{")
        for inst in INSTANCES[:1] if base(name) in PER_INSTANCE else INSTANCES:
            out.append({"series": f'{name}{{instance="{inst}",{labels}', "values": values})
    return out


def one_instance(expr: str) -> str:
    """`expr` with every hallwatch series restricted to the first instance."""

    def restrict(m: re.Match[str]) -> str:
        name, matchers = m.group(1), m.group(2)
        inner = matchers[1:-1].strip() if matchers else ""
        return f'{name}{{instance="{INSTANCES[0]}"{", " + inner if inner else ""}}}'

    return _NAME.sub(restrict, expr)


def checks(expr: str) -> list[str]:
    """PromQL that returns nothing exactly when `expr` over the pair equals `expr` over one
    instance: no value differs, and there are as many series."""
    pair, one = f"({expr})", f"({one_instance(expr)})"
    return [
        f"{pair} != ignoring(instance) {one}",
        f"(count({pair}) or vector(0)) != (count({one}) or vector(0))",
    ]


def check_file(rules: str, exprs: list[str]) -> str:
    """A promtool test file (JSON, which YAML reads) checking every expression in `exprs`."""
    tests = [
        {"expr": check, "eval_time": "5m", "exp_samples": []}
        for expr in exprs
        for check in checks(expr)
    ]
    body = {
        "rule_files": [rules],
        "evaluation_interval": "15s",
        "tests": [{"interval": "15s", "input_series": input_series(), "promql_expr_test": tests}],
    }
    return json.dumps(body, ensure_ascii=False, indent=1)
