"""hallwatch operations: the daemon itself (ingest, MQTT, store, notifications, outbox)."""

from __future__ import annotations

from grafana.dashboards_src.common import (
    dashboard,
    instant,
    override,
    series,
    stat_panel,
    time_series,
    value_map,
)


def build() -> dict[str, object]:
    return dashboard(
        uid="hallwatch-operations",
        title="hallwatch operations",
        description=(
            "The daemon itself: ingest, rejects, lag, MQTT, store, notifications and outbox."
        ),
        tags=["hallwatch", "operations"],
        refresh="30s",
        time_from="now-6h",
        hall=None,
        panels=[
            stat_panel(
                "MQTT connection",
                (0, 0, 4, 5),
                [instant("min(hallwatch_mqtt_connected)")],
                steps=((None, "red"), (1, "green")),
                value_size=60,
                mappings=[value_map(("0", "disconnected", "red"), ("1", "connected", "green"))],
            ),
            stat_panel(
                "Reconnects (1 h)",
                (4, 0, 4, 5),
                [instant("sum(increase(hallwatch_mqtt_reconnects_total[1h]))")],
                steps=((None, "green"), (1, "orange"), (5, "red")),
                value_size=60,
            ),
            stat_panel(
                "Outbox depth",
                (8, 0, 4, 5),
                [instant("sum(hallwatch_outbox_depth)")],
                description="Notifications stored and not yet delivered.",
                steps=((None, "green"), (10, "orange"), (100, "red")),
                value_size=60,
            ),
            stat_panel(
                "Oldest pending notification",
                (12, 0, 4, 5),
                [instant("max(hallwatch_outbox_oldest_pending_seconds)")],
                steps=((None, "green"), (60, "orange"), (300, "red")),
                value_size=60,
                unit="s",
            ),
            stat_panel(
                "Dead letters (24 h)",
                (16, 0, 4, 5),
                [instant("sum(increase(hallwatch_outbox_dead_letters_total[24h]))")],
                description="Notifications given up on after every retry.",
                steps=((None, "green"), (1, "red")),
                value_size=60,
            ),
            stat_panel(
                "State errors (24 h)",
                (20, 0, 4, 5),
                [instant("sum(increase(hallwatch_state_errors_total[24h]))")],
                description=(
                    "Stored events the state core failed to apply: a bug, the events are kept."
                ),
                steps=((None, "green"), (1, "red")),
                value_size=60,
            ),
            time_series(
                "Ingest rate by result",
                (0, 5, 12, 8),
                [
                    series(
                        "sum by (result) (rate(hallwatch_events_total[$__rate_interval]))",
                        "{{result}}",
                    )
                ],
                unit="ops",
            ),
            time_series(
                "Rejects by reason",
                (12, 5, 12, 8),
                [
                    series(
                        "sum by (reason) (rate(hallwatch_events_rejected_total[$__rate_interval]))",
                        "{{reason}}",
                    )
                ],
                unit="ops",
            ),
            time_series(
                "Event lag (arrival − ts)",
                (0, 13, 8, 8),
                [
                    series(
                        (
                            "histogram_quantile(0.5, sum by (le) "
                            "(rate(hallwatch_event_lag_seconds_bucket[$__rate_interval])))"
                        ),
                        "p50",
                    ),
                    series(
                        (
                            "histogram_quantile(0.95, sum by (le) "
                            "(rate(hallwatch_event_lag_seconds_bucket[$__rate_interval])))"
                        ),
                        "p95",
                    ),
                    series(
                        (
                            "histogram_quantile(0.99, sum by (le) "
                            "(rate(hallwatch_event_lag_seconds_bucket[$__rate_interval])))"
                        ),
                        "p99",
                    ),
                ],
                unit="s",
            ),
            time_series(
                "Store commit time",
                (8, 13, 8, 8),
                [
                    series(
                        (
                            "histogram_quantile(0.99, sum by (le) "
                            "(rate(hallwatch_store_commit_seconds_bucket[$__rate_interval])))"
                        ),
                        "p99 commit",
                    ),
                    series(
                        (
                            "sum(rate(hallwatch_store_batch_events_sum[$__rate_interval])) / "
                            "sum(rate(hallwatch_store_batch_events_count[$__rate_interval]))"
                        ),
                        "mean batch (events)",
                    ),
                ],
                unit="s",
                overrides=[
                    override("mean batch (events)", unit="short", custom_axisPlacement="right")
                ],
            ),
            time_series(
                "Seconds since the newest event, per hall",
                (16, 13, 8, 8),
                [
                    series(
                        "time() - max by (hall) (hallwatch_hall_last_event_timestamp_seconds)",
                        "{{hall}}",
                    )
                ],
                description=(
                    "Event time of the newest event from each hall; devices heartbeat every 30 "
                    "s, so a large value means the hall has gone quiet."
                ),
                unit="s",
            ),
            time_series(
                "Notifications by channel and result",
                (0, 21, 12, 8),
                [
                    series(
                        (
                            "sum by (channel, result) "
                            "(rate(hallwatch_notifications_total[$__rate_interval]))"
                        ),
                        "{{channel}} {{result}}",
                    )
                ],
                unit="ops",
            ),
            time_series(
                "Notification failures by channel",
                (12, 21, 12, 8),
                [
                    series(
                        (
                            "sum by (channel) "
                            '(increase(hallwatch_notifications_total{result=~"failed|dead"}[$__rate_interval]))'
                        ),
                        "{{channel}}",
                    )
                ],
                description=(
                    "Deliveries refused for good (failed) or given up after every retry (dead): "
                    "WeCom errcode, SMS gateway or webhook errors."
                ),
                unit="short",
                red_line=1,
            ),
            time_series(
                "Outbox",
                (0, 29, 8, 8),
                [
                    series("sum(hallwatch_outbox_depth)", "depth"),
                    series("max(hallwatch_outbox_oldest_pending_seconds)", "oldest pending (s)"),
                ],
                unit="short",
            ),
            time_series(
                "Estimate error (absolute)",
                (8, 29, 8, 8),
                [
                    series(
                        (
                            "histogram_quantile(0.5, sum by (le) "
                            "(rate(hallwatch_estimate_error_seconds_bucket[$__rate_interval])))"
                        ),
                        "p50",
                    ),
                    series(
                        (
                            "histogram_quantile(0.9, sum by (le) "
                            "(rate(hallwatch_estimate_error_seconds_bucket[$__rate_interval])))"
                        ),
                        "p90",
                    ),
                ],
                description="Estimated minus actual wait of called tickets, absolute.",
                unit="s",
            ),
            stat_panel(
                "Last restore",
                (16, 29, 8, 8),
                [instant("max(hallwatch_restore_seconds)", "restore time")],
                description=(
                    "Time the last start-up took to rebuild the state from snapshot + event log."
                ),
                steps=((None, "green"), (5, "orange"), (30, "red")),
                value_size=50,
                unit="s",
                decimals=2,
            ),
        ],
    )
