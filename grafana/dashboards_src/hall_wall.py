"""大厅实时监控（大屏）: the wall display, one hall, read from across the room."""

from __future__ import annotations

from grafana.dashboards_src.common import (
    bar_gauge,
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
        uid="hallwatch-hall-wall",
        title="大厅实时监控（大屏）",
        description="住房公积金服务大厅的墙面大屏：厅内人数、各业务排队与预计等待、窗口、告警、绿色通道。",
        tags=["hallwatch", "wall"],
        refresh="10s",
        time_from="now-3h",
        hall="one",
        panels=[
            stat_panel(
                "大厅内人数",
                (0, 0, 4, 7),
                [instant('sum(hallwatch_hall_headcount{hall="$hall"})')],
                description="门口客流计数器估算的厅内人数。应急预案：达到 20 人为业务高峰期。",
                steps=((None, "green"), (15, "orange"), (20, "red")),
                value_size=110,
            ),
            stat_panel(
                "排队等候",
                (4, 0, 4, 7),
                [instant('sum(hallwatch_queue_waiting{hall="$hall"})')],
                description="已取号、尚未叫号的票数（全部业务、全部类别）。",
                steps=((None, "green"), (15, "orange"), (20, "red")),
                value_size=110,
            ),
            stat_panel(
                "最长预计等待",
                (8, 0, 4, 7),
                [instant('max(hallwatch_estimated_wait_seconds{hall="$hall"})')],
                description=(
                    "现在取号的预计等待，取各业务中最长者。应急预案：等待达到 20 分钟为业务高峰期。"
                ),
                steps=((None, "green"), (900, "orange"), (1200, "red")),
                value_size=90,
                unit="s",
            ),
            stat_panel(
                "开放窗口",
                (12, 0, 3, 7),
                [instant('sum(hallwatch_windows_open{hall="$hall"})')],
                steps=((None, "blue"),),
                value_size=110,
            ),
            stat_panel(
                "应急窗口",
                (15, 0, 3, 7),
                [instant('sum(hallwatch_windows_emergency_open{hall="$hall"})')],
                description="按应急预案增设并已开放的应急窗口。",
                steps=((None, "text"), (1, "orange")),
                value_size=110,
            ),
            stat_panel(
                "绿色通道等候",
                (18, 0, 3, 7),
                [instant('sum(hallwatch_queue_waiting{hall="$hall", priority="green"})')],
                description="老、弱、病、残等特殊群体，优先于其他号叫号。",
                steps=((None, "green"), (3, "orange")),
                value_size=110,
            ),
            stat_panel(
                "高峰指数",
                (21, 0, 3, 7),
                [
                    instant(
                        'max(hallwatch_hall_headcount{hall="$hall"} / 20 or '
                        'hallwatch_queue_oldest_wait_seconds{hall="$hall"} / 1200 or '
                        'hallwatch_estimated_wait_seconds{hall="$hall"} / 1200)'
                    )
                ],
                description=(
                    "相对应急预案阈值的负荷：厅内人数/20、已等最久/20 分钟、"
                    "预计等待/20 分钟中的最大者。100% 及以上即为业务高峰期，应启动应急预案。"
                ),
                steps=((None, "green"), (0.75, "orange"), (1, "red")),
                value_size=80,
                unit="percentunit",
            ),
            bar_gauge(
                "各业务等候人数（按类别）",
                (0, 7, 8, 10),
                [
                    instant(
                        (
                            "label_replace(label_replace(label_replace(sum by (service, "
                            'priority) (hallwatch_queue_waiting{hall="$hall"}), '
                            '"class", "绿色通道", '
                            '"priority", "green"), "class", "预约", "priority", "appointment"), '
                            '"class", "普通", "priority", "normal")'
                        ),
                        "{{service}} · {{class}}",
                    )
                ],
                description="每项业务各类别（绿色通道、预约、普通）的等候票数。",
                steps=((None, "green"), (10, "orange"), (20, "red")),
            ),
            bar_gauge(
                "各业务预计等待（20 分钟线）",
                (8, 7, 8, 10),
                [
                    instant(
                        'max by (service) (hallwatch_estimated_wait_seconds{hall="$hall"})',
                        "{{service}}",
                    )
                ],
                description="现在取号的预计等待；红色即超过应急预案的 20 分钟。",
                steps=((None, "green"), (900, "orange"), (1200, "red")),
                unit="s",
                max_value=1800,
            ),
            stat_panel(
                "当前告警",
                (16, 7, 8, 5),
                [
                    instant('sum by (level) (hallwatch_alerts_firing{hall="$hall"})', "{{level}}"),
                    instant('sum(hallwatch_alerts_firing{hall="$hall"}) or vector(0)', "合计"),
                ],
                description="本大厅正在告警的事项数，按级别（一级：大厅负责人；二级：升级至中心主任室）。",
                steps=((None, "green"), (1, "orange")),
                value_size=60,
                with_name=True,
                overrides=[
                    override("1", displayName="一级"),
                    override("2", displayName="二级"),
                    override("3", displayName="三级"),
                ],
            ),
            stat_panel(
                "信息系统",
                (16, 12, 8, 5),
                [
                    instant(
                        (
                            'sum by (system) (hallwatch_system_state{hall="$hall", '
                            'state="degraded"}) + 2 * sum by (system) '
                            '(hallwatch_system_state{hall="$hall", state="down"})'
                        ),
                        "{{system}}",
                    )
                ],
                description="业务信息系统状态。中断超过半小时，应告知群众预计恢复时间（应急预案三、3）。",
                steps=((None, "green"), (1, "orange"), (2, "red")),
                value_size=50,
                with_name=True,
                mappings=[
                    value_map(("0", "正常", "green"), ("1", "缓慢", "orange"), ("2", "中断", "red"))
                ],
            ),
            time_series(
                "预计等待趋势（红线 20 分钟）",
                (0, 17, 10, 9),
                [
                    series(
                        'max by (service) (hallwatch_estimated_wait_seconds{hall="$hall"})',
                        "{{service}} 预计",
                    ),
                    series('max(hallwatch_queue_oldest_wait_seconds{hall="$hall"})', "已等最久"),
                ],
                unit="s",
                red_line=1200,
                overrides=[
                    override("已等最久", custom_lineStyle={"fill": "dash", "dash": [10, 10]})
                ],
            ),
            time_series(
                "人数趋势（红线 20 人）",
                (10, 17, 8, 9),
                [
                    series('sum(hallwatch_hall_headcount{hall="$hall"})', "厅内人数"),
                    series('sum(hallwatch_queue_waiting{hall="$hall"})', "排队等候"),
                ],
                unit="short",
                red_line=20,
            ),
            stat_panel(
                "预计等待误差",
                (18, 17, 6, 4),
                [instant('avg(hallwatch_estimate_mae_seconds{hall="$hall"})', "平均绝对误差")],
                description="近期已叫号票的预计等待与实际等待之差（平均绝对误差），各业务平均。",
                steps=((None, "green"), (300, "orange"), (600, "red")),
                value_size=70,
                unit="s",
            ),
            stat_panel(
                "今日平均等待",
                (18, 21, 6, 5),
                [instant('max(hallwatch_wait_mean_seconds_today{hall="$hall"})', "今日平均等待")],
                description="今日已叫号票从取号到叫号的平均等待。",
                steps=((None, "green"), (900, "orange"), (1200, "red")),
                value_size=70,
                unit="s",
            ),
        ],
    )
