"""中心各大厅总览: every hall at once (the centre's view)."""

from __future__ import annotations

from grafana_foundation_sdk.models.common import TableColoredBackgroundCellOptions

from grafana.dashboards_src.common import (
    bar_gauge,
    dashboard,
    instant,
    override,
    series,
    stat_panel,
    table_panel,
    time_series,
    value_map,
)


def build() -> dict[str, object]:
    return dashboard(
        uid="hallwatch-centre-overview",
        title="中心各大厅总览",
        description="全市各服务大厅：高峰、趋势、增开窗口建议、闭馆超时风险、设备、信息系统、投诉。",
        tags=["hallwatch", "overview"],
        refresh="30s",
        time_from="now-12h",
        hall="many",
        panels=[
            stat_panel(
                "高峰大厅",
                (0, 0, 4, 5),
                [
                    instant(
                        'count(max by (hall) (hallwatch_hall_headcount{hall=~"$hall"} / 20 '
                        'or hallwatch_queue_oldest_wait_seconds{hall=~"$hall"} / 1200 or '
                        'hallwatch_estimated_wait_seconds{hall=~"$hall"} / 1200) >= 1) or '
                        "vector(0)"
                    )
                ],
                description="达到应急预案高峰（20 人或 20 分钟）的大厅数。",
                steps=((None, "green"), (1, "red")),
                value_size=80,
            ),
            stat_panel(
                "当前告警",
                (4, 0, 4, 5),
                [instant('sum(hallwatch_alerts_firing{hall=~"$hall"}) or vector(0)')],
                steps=((None, "green"), (1, "orange")),
                value_size=80,
            ),
            stat_panel(
                "离线设备",
                (8, 0, 4, 5),
                [instant('sum(1 - hallwatch_device_up{hall=~"$hall"})')],
                description="已离线或超过心跳超时未上报的取号机、客流计数器、窗口终端、显示屏。",
                steps=((None, "green"), (1, "orange")),
                value_size=80,
            ),
            stat_panel(
                "信息系统故障",
                (12, 0, 4, 5),
                [instant('sum(hallwatch_system_state{hall=~"$hall", state="down"})')],
                steps=((None, "green"), (1, "red")),
                value_size=80,
            ),
            stat_panel(
                "投诉即将到期",
                (16, 0, 4, 5),
                [instant('sum(hallwatch_complaints_due_soon{hall=~"$hall"})')],
                description="受理后 2 个工作日内须答复；即将到期的投诉。",
                steps=((None, "green"), (1, "orange")),
                value_size=80,
            ),
            stat_panel(
                "投诉已超期",
                (20, 0, 4, 5),
                [instant('sum(hallwatch_complaints_overdue{hall=~"$hall"})')],
                steps=((None, "green"), (1, "red")),
                value_size=80,
            ),
            bar_gauge(
                "各大厅高峰指数（100% = 启动应急预案）",
                (0, 5, 8, 9),
                [
                    instant(
                        (
                            'max by (hall) (hallwatch_hall_headcount{hall=~"$hall"} / 20 or '
                            'hallwatch_queue_oldest_wait_seconds{hall=~"$hall"} / 1200 or '
                            'hallwatch_estimated_wait_seconds{hall=~"$hall"} / 1200)'
                        ),
                        "{{hall}}",
                    )
                ],
                description="厅内人数/20、已等最久/20 分钟、预计等待/20 分钟中的最大者。",
                steps=((None, "green"), (0.75, "orange"), (1, "red")),
                unit="percentunit",
                max_value=1.5,
            ),
            time_series(
                "厅内人数（红线 20 人）",
                (8, 5, 8, 9),
                [series('sum by (hall) (hallwatch_hall_headcount{hall=~"$hall"})', "{{hall}}")],
                unit="short",
                red_line=20,
            ),
            time_series(
                "最长等待（红线 20 分钟）",
                (16, 5, 8, 9),
                [
                    series(
                        'max by (hall) (hallwatch_estimated_wait_seconds{hall=~"$hall"})',
                        "{{hall}} 预计",
                    ),
                    series(
                        'max by (hall) (hallwatch_queue_oldest_wait_seconds{hall=~"$hall"})',
                        "{{hall}} 已等最久",
                    ),
                ],
                unit="s",
                red_line=1200,
            ),
            table_panel(
                "增开窗口建议",
                (0, 14, 8, 8),
                (
                    "max by (hall, service, goal) "
                    '(hallwatch_staffing_extra_windows{hall=~"$hall"}) > 0'
                ),
                description=(
                    "为在 20 分钟内消化当前排队（backlog）或跟上到达速度（arrivals）"
                    "需增开的窗口数。"
                ),
                columns={
                    "hall": "大厅",
                    "service": "业务",
                    "goal": "依据",
                    "Value": "建议增开窗口",
                },
                hide=("Time",),
            ),
            bar_gauge(
                "闭馆超时风险",
                (8, 14, 8, 8),
                [
                    instant(
                        'max by (hall) (hallwatch_closing_overrun_seconds{hall=~"$hall"})',
                        "{{hall}}",
                    )
                ],
                description="按当前排队与开放窗口，最后一位群众办完时超出下班时间的预计时长（需延时服务）。",
                steps=((None, "green"), (1, "orange"), (1800, "red")),
                unit="s",
            ),
            time_series(
                "开放窗口与应急窗口",
                (16, 14, 8, 8),
                [
                    series(
                        'sum by (hall) (hallwatch_windows_open{hall=~"$hall"})', "{{hall}} 开放"
                    ),
                    series(
                        'sum by (hall) (hallwatch_windows_emergency_open{hall=~"$hall"})',
                        "{{hall}} 应急",
                    ),
                ],
                unit="short",
            ),
            table_panel(
                "离线设备",
                (0, 22, 8, 8),
                'hallwatch_device_up{hall=~"$hall"} == 0',
                columns={"hall": "大厅", "device": "设备", "kind": "类型"},
            ),
            table_panel(
                "信息系统状态",
                (8, 22, 8, 8),
                'hallwatch_system_state{hall=~"$hall"} == 1',
                columns={"hall": "大厅", "system": "系统", "state": "状态"},
                overrides=[
                    override(
                        "state",
                        mappings=[
                            value_map(
                                ("up", "正常", "green"),
                                ("degraded", "缓慢", "orange"),
                                ("down", "中断", "red"),
                            )
                        ],
                        custom_cellOptions=TableColoredBackgroundCellOptions(),
                    )
                ],
            ),
            bar_gauge(
                "投诉办理",
                (16, 22, 8, 8),
                [
                    instant(
                        'sum by (hall) (hallwatch_complaints_open{hall=~"$hall"})',
                        "{{hall}} 办理中",
                    ),
                    instant(
                        'sum by (hall) (hallwatch_complaints_due_soon{hall=~"$hall"})',
                        "{{hall}} 即将到期",
                    ),
                    instant(
                        'sum by (hall) (hallwatch_complaints_overdue{hall=~"$hall"})',
                        "{{hall}} 已超期",
                    ),
                    instant(
                        'sum by (hall) (hallwatch_complaints_registered{hall=~"$hall"})',
                        "{{hall}} 累计受理",
                    ),
                ],
                description="“谁受理，谁负责”：2 个工作日内核查并答复。",
                steps=((None, "blue"),),
            ),
        ],
    )
