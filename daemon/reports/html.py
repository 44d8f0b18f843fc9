"""The report as one self-contained HTML page (inline CSS and SVG, no script, nothing fetched)
plus a CSV file for every table, for the centre's archive (plan §5: 存档备查).

`tables(report)` lays the figures out as titled tables; `render(report)` is the page (the same
tables, with charts from `reports.svgchart`); `write(report, out_dir)` writes report.html and the
CSVs (UTF-8 with a BOM, so Excel shows the Chinese); `zip_bytes(report)` packs them for the API.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path

from hallwatch.daemon.reports import svgchart
from hallwatch.daemon.reports.figures import (
    ANSWER_WORKING_DAYS,
    Accuracy,
    HallDay,
    Report,
    WaitStats,
    tally,
)

CHANNELS = {"visit": "现场", "phone": "电话", "letter": "信函", "online": "网络"}
SEVERITY = {"normal": "一般", "serious": "严重"}
KINDS = {
    "ticket_machine": "取号机",
    "door_counter": "客流计数器",
    "window_terminal": "窗口终端",
    "display": "显示屏",
    "other": "其他",
}
LEVELS = {1: "一级", 2: "二级"}
REASONS = {"cleared": "已缓解", "closed": "营业结束", "gone": "—"}
SYSTEM_STATES = {"down": "中断", "degraded": "降级"}
NONE = "—"
Cell = str | int | float | None


@dataclass(frozen=True, slots=True)
class Table:
    slug: str  # CSV file name without .csv
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""


# -- formatting --------------------------------------------------------------------------------


class Fmt:
    """Numbers and times as the report writes them, in the hall's time zone."""

    def __init__(self, report: Report) -> None:
        self.zone = report.settings.zone

    def at(self, ts: float | None) -> str:
        if ts is None:
            return NONE
        return datetime.fromtimestamp(ts, self.zone).strftime("%Y-%m-%d %H:%M")

    def clock(self, ts: float | None) -> str:
        if ts is None:
            return NONE
        return datetime.fromtimestamp(ts, self.zone).strftime("%H:%M")

    @staticmethod
    def dur(s: float | None) -> str:
        if s is None:
            return NONE
        m = round(s / 60)
        return f"{m // 60}小时{m % 60:02d}分" if m >= 60 else f"{m}分钟"

    @staticmethod
    def minutes(s: float | None) -> str:
        return NONE if s is None else f"{s / 60:.1f}"

    @staticmethod
    def pct(share: float | None) -> str:
        return NONE if share is None else f"{share * 100:.1f}%"

    @staticmethod
    def count(n: int | None) -> str:
        return NONE if n is None else str(n)

    @staticmethod
    def yes(b: bool | None) -> str:
        return NONE if b is None else "是" if b else "否"


def _waits(w: WaitStats) -> tuple[str, str, str]:
    return Fmt.minutes(w.median_s), Fmt.minutes(w.p90_s), Fmt.pct(w.over_share)


def _acc(a: Accuracy) -> tuple[str, str, str]:
    return Fmt.minutes(a.mae_s), Fmt.minutes(a.bias_s), Fmt.pct(a.within_5min)


# -- tables ------------------------------------------------------------------------------------

WAIT_COLS = ("等待中位数(分钟)", "等待90分位(分钟)", "等待≥20分钟占比")


def tables(r: Report) -> list[Table]:
    """Every table of the report, in page order."""
    f = Fmt(r)
    name = r.settings.hall_name
    out = [
        Table(
            "01-summary",
            "概览",
            (
                "大厅",
                "天数",
                "取号",
                "办结(含转办)",
                "未到",
                "取消",
                *WAIT_COLS,
                "预计等待误差(分钟)",
                "高峰启动次数",
                "最高在厅人数",
                "系统故障次数",
                "投诉件数",
                "设备故障次数",
            ),
            tuple(
                (
                    s.name,
                    s.days,
                    s.issued,
                    s.served,
                    s.no_show,
                    s.cancelled,
                    *_waits(s.waits),
                    Fmt.minutes(s.accuracy.mae_s),
                    s.peak_episodes,
                    s.peak_headcount,
                    s.outages,
                    s.complaints,
                    s.device_failures,
                )
                for s in r.summaries
            ),
        ),
        Table(
            "02-peak-episodes",
            "高峰期应急处置（在厅20人或等待20分钟启动预案）",
            (
                "大厅",
                "启动时间",
                "级别",
                "升级时间",
                "最高在厅人数",
                "最长预计等待(分钟)",
                "期间实际最长等待(分钟)",
                "持续",
                "确认用时",
                "确认人",
                "应急窗口",
                "启动至开窗",
                "等待回落至20分钟内用时",
                "结束",
            ),
            tuple(
                (
                    name(p.hall),
                    f.at(p.fired_at),
                    LEVELS.get(p.level, str(p.level)),
                    "、".join(f"{f.clock(t)}({LEVELS.get(lv, lv)})" for t, lv in p.escalations)
                    or NONE,
                    p.peak_headcount,
                    Fmt.minutes(p.peak_wait_s),
                    Fmt.minutes(p.actual_max_wait_s),
                    Fmt.dur(p.duration_s) if p.resolved_at is not None else "进行中",
                    Fmt.dur(p.ack_s),
                    p.acked_by or NONE,
                    _emergency(p.emergency_at_start, p.emergency_opened, f),
                    Fmt.dur(p.emergency_opened[0][1] - p.fired_at) if p.emergency_opened else NONE,
                    _back_under(p.wait_over_target, p.back_under_s),
                    REASONS.get(p.reason, p.reason or NONE),
                )
                for p in r.peaks
            ),
            note=(
                "" if r.acks_recorded else "确认用时：告警服务未保存该时段的确认记录，显示为“—”。"
            ),
        ),
        Table(
            "03-emergency-windows",
            "应急窗口开启记录",
            ("大厅", "窗口", "开启", "关闭", "开放时长"),
            tuple(
                (
                    name(w.hall),
                    w.window,
                    f.at(w.opened_at),
                    f.at(w.closed_at),
                    Fmt.dur(None if w.closed_at is None else w.closed_at - w.opened_at),
                )
                for w in r.emergency
            ),
        ),
        Table(
            "04-system-outages",
            "信息系统故障",
            (
                "大厅",
                "系统",
                "开始",
                "恢复",
                "持续",
                "状态",
                "说明",
                "期间取号",
                "告警级别",
                "登记回访人数",
                "已通知人数",
            ),
            tuple(
                (
                    name(o.hall),
                    o.system,
                    f.at(o.start),
                    f.at(o.end) if o.end is not None else "未恢复",
                    Fmt.dur(o.duration_s),
                    SYSTEM_STATES.get(o.state, o.state),
                    o.detail or NONE,
                    o.tickets_issued,
                    LEVELS.get(o.alert_level, NONE),
                    Fmt.count(o.callbacks),
                    Fmt.count(o.notified),
                )
                for o in r.outages
            ),
            note="" if r.callbacks_recorded else "回访登记簿尚未接入，回访与通知人数显示为“—”。",
        ),
    ]
    comp_note = "" if r.complaints_recorded else "投诉办理记录尚未接入：答复、上报与回访显示为“—”。"
    out.append(
        Table(
            "05-complaints",
            "投诉受理与办理明细",
            (
                "编号",
                "大厅",
                "受理时间",
                "渠道",
                "性质",
                "事由",
                "受理人",
                "答复期限",
                "责任人",
                "答复时间",
                "2个工作日内答复",
                "上报",
                "已回访",
            ),
            tuple(
                (
                    c.complaint_id,
                    name(c.hall),
                    f.at(c.received_at),
                    CHANNELS.get(c.channel, c.channel),
                    SEVERITY.get(c.severity, c.severity),
                    c.summary,
                    c.received_by,
                    c.due.isoformat(),
                    c.responsible,
                    f.at(c.answered_at),
                    Fmt.yes(c.in_time),
                    Fmt.yes(c.escalated),
                    Fmt.yes(c.followup_done),
                )
                for c in r.complaints
            ),
            note=comp_note,
        )
    )
    for slug, title, key, label in (
        ("06-complaints-by-hall", "投诉汇总（按大厅）", "hall", "大厅"),
        ("07-complaints-by-person", "投诉汇总（按责任人）", "responsible", "责任人"),
    ):
        out.append(
            Table(
                slug,
                title,
                (label, "受理", "严重", "按期答复", "超期或未答复", "上报", "已回访"),
                tuple(
                    (
                        name(t.key) if key == "hall" else t.key,
                        t.received,
                        t.serious,
                        Fmt.count(t.in_time),
                        Fmt.count(t.late_or_open),
                        Fmt.count(t.escalated),
                        Fmt.count(t.followup_done),
                    )
                    for t in tally(r.complaints, key)
                ),
            )
        )
    day_rows = []
    hour_rows = []
    service_rows = []
    for hall in r.halls:
        for d, w in r.by_day(hall):
            day_rows.append(
                (
                    name(hall),
                    d.day.isoformat(),
                    "是" if d.working_day else "否",
                    sum(1 for v in d.visits if v.leg == 0),
                    sum(1 for v in d.visits if v.outcome == "completed"),
                    *_waits(w),
                    d.peak_headcount,
                    len(d.peaks),
                )
            )
        for h in r.by_hour(hall):
            hour_rows.append(
                (
                    name(hall),
                    f"{h.hour:02d}:00-{h.hour + 1:02d}:00",
                    f"{h.issued_per_day:.1f}",
                    *_waits(h.waits),
                    {"busiest": "最忙", "quietest": "最闲（建议错峰）"}.get(h.tag, ""),
                )
            )
        for service, served, w, a in r.by_service(hall):
            service_rows.append((name(hall), service, served, w.n, *_waits(w), *_acc(a)))
    out += [
        Table(
            "08-service-by-day",
            "每日服务情况",
            ("大厅", "日期", "工作日", "取号", "办结", *WAIT_COLS, "最高在厅人数", "高峰启动"),
            tuple(day_rows),
        ),
        Table(
            "09-service-by-hour",
            "分时段服务情况（高低峰时段提醒牌）",
            ("大厅", "时段", "日均取号", *WAIT_COLS, "标注"),
            tuple(hour_rows),
            note=f"最闲时段：等待样本不少于{r.settings.min_hour_samples}个、平均等待最短的时段。",
        ),
        Table(
            "10-service-by-service",
            "分业务服务情况与等待时间预计准确度",
            (
                "大厅",
                "业务",
                "办结",
                "叫号",
                *WAIT_COLS,
                "预计平均误差(分钟)",
                "预计偏差(分钟)",
                "误差5分钟内占比",
            ),
            tuple(service_rows),
            note="预计准确度：按事件重放（每日冷启动）所得的取号时预计等待与实际等待之差。",
        ),
        Table(
            "11-device-offline",
            "设备离线记录（营业时间内）",
            ("大厅", "设备", "类型", "离线", "恢复", "营业时间内停机"),
            tuple(
                (
                    name(d.hall),
                    d.device,
                    KINDS.get(d.kind, d.kind),
                    f.at(d.start),
                    f.at(d.end) if d.end is not None else "未恢复",
                    Fmt.dur(d.downtime_s),
                )
                for d in r.downs
            ),
            note="全天无任何上报的设备视为当日未启用，不计停机。",
        ),
        Table(
            "12-device-ranking",
            "设备故障排名（故障率高的设备应更新或调整）",
            ("排名", "大厅", "设备", "类型", "故障次数", "累计停机", "最长一次"),
            tuple(
                (
                    i,
                    name(k.hall),
                    k.device,
                    KINDS.get(k.kind, k.kind),
                    k.failures,
                    Fmt.dur(k.downtime_s),
                    Fmt.dur(k.longest_s),
                )
                for i, k in enumerate(r.ranking, 1)
            ),
        ),
    ]
    return out


def _emergency(at_start: int, opened: Sequence[tuple[str, float]], f: Fmt) -> str:
    parts = [f"启动时已开{at_start}个"] if at_start else []
    parts += [f"{w} {f.clock(t)}开启" for w, t in opened]
    return "；".join(parts) or "未开启"


def _back_under(over: bool, s: float | None) -> str:
    if not over:
        return "未超过20分钟"
    return Fmt.dur(s) if s is not None else "未回落"


# -- charts ------------------------------------------------------------------------------------


def charts(r: Report) -> dict[str, list[str]]:
    """SVG charts by the slug of the table they illustrate."""
    f = Fmt(r)
    target_min = r.settings.target_wait_s / 60
    name = r.settings.hall_name
    out: dict[str, list[str]] = {}
    for d in r.days:
        if d.peaks and d.samples:
            out.setdefault("02-peak-episodes", []).append(_day_chart(d, r, f))
    for hall in r.halls:
        hours = r.by_hour(hall)
        cats = [f"{h.hour:02d}时" for h in hours]
        out.setdefault("09-service-by-hour", []).append(
            svgchart.bar_chart(
                cats,
                [svgchart.Series("日均取号", [h.issued_per_day for h in hours])],
                title=f"{name(hall)} 各时段日均取号",
                y_label="取号（张）",
            )
        )
        out["09-service-by-hour"].append(
            svgchart.bar_chart(
                cats,
                [
                    svgchart.Series("中位数", [_min(h.waits.median_s) for h in hours]),
                    svgchart.Series("90分位", [_min(h.waits.p90_s) for h in hours]),
                ],
                title=f"{name(hall)} 各时段等待时间",
                y_label="等待（分钟）",
                refs=[svgchart.Ref(target_min, "20分钟")],
            )
        )
        out["09-service-by-hour"].append(_heat(r, hall))
        services = r.by_service(hall)
        out.setdefault("10-service-by-service", []).append(
            svgchart.bar_chart(
                [s for s, *_ in services],
                [
                    svgchart.Series("等待中位数", [_min(w.median_s) for _, _, w, _ in services]),
                    svgchart.Series("等待90分位", [_min(w.p90_s) for _, _, w, _ in services]),
                    svgchart.Series("预计平均误差", [_min(a.mae_s) for _, _, _, a in services]),
                ],
                title=f"{name(hall)} 分业务等待时间与预计误差",
                y_label="分钟",
                refs=[svgchart.Ref(target_min, "20分钟")],
            )
        )
    if r.ranking:
        top = r.ranking[:15]
        out["12-device-ranking"] = [
            svgchart.hbar_chart(
                [f"{name(k.hall)} {k.device}" for k in top],
                [float(k.failures) for k in top],
                title="设备故障次数排名",
                value_labels=[f"{k.failures}次，停机{Fmt.dur(k.downtime_s)}" for k in top],
            )
        ]
    if r.complaints:
        halls = r.halls
        by_day: dict[str, list[float | None]] = {}
        for c in r.complaints:
            row = by_day.setdefault(f.at(c.received_at)[:10], [0.0] * len(halls))
            if c.hall in halls:
                row[halls.index(c.hall)] = (row[halls.index(c.hall)] or 0.0) + 1
        out["05-complaints"] = [
            svgchart.bar_chart(
                [d[5:] for d in by_day],
                [
                    svgchart.Series(name(h), [v[i] for v in by_day.values()])
                    for i, h in enumerate(halls)
                ],
                title="每日受理投诉",
                y_label="件",
            )
        ]
    return out


def _min(s: float | None) -> float | None:
    return None if s is None else s / 60


def _day_chart(d: HallDay, r: Report, f: Fmt) -> str:
    rule = r.settings.rules.for_hall(d.hall).queue_peak
    xs = [s.at for s in d.samples]
    start = datetime.fromtimestamp(xs[0], r.settings.zone).replace(minute=0, second=0)
    ticks = []
    t = start.timestamp()
    while t <= xs[-1]:
        ticks.append((t, f.clock(t)))
        t += 3600
    spans = [
        svgchart.Ref(p.fired_at, "高峰预案", p.resolved_at if p.resolved_at is not None else xs[-1])
        for p in d.peaks
    ]
    return svgchart.line_chart(
        [
            svgchart.Line("在厅人数", [(s.at, float(s.headcount)) for s in d.samples]),
            svgchart.Line("最长预计等待（分钟）", [(s.at, _min(s.max_wait_s)) for s in d.samples]),
            svgchart.Line("排队人数", [(s.at, float(s.waiting)) for s in d.samples]),
        ],
        title=f"{r.settings.hall_name(d.hall)} {d.day.month}月{d.day.day}日 在厅人数与预计等待",
        y_label="人 / 分钟",
        x_ticks=ticks,
        refs=[svgchart.Ref(float(rule.headcount), "20人 / 20分钟"), *spans],
    )


def _heat(r: Report, hall: str) -> str:
    days = [d for d in r.days if d.hall == hall and d.visits]
    zone = r.settings.zone
    hours = sorted({datetime.fromtimestamp(v.issued_at, zone).hour for d in days for v in d.visits})
    grid: list[list[float | None]] = []
    for d in days:
        sums: dict[int, list[float]] = {}
        for v in d.visits:
            if v.wait_s is not None:
                sums.setdefault(datetime.fromtimestamp(v.issued_at, zone).hour, []).append(v.wait_s)
        grid.append([sum(sums[h]) / len(sums[h]) / 60 if h in sums else None for h in hours])
    return svgchart.heat_map(
        [d.day.strftime("%m-%d") for d in days],
        [f"{h:02d}时" for h in hours],
        grid,
        title=f"{r.settings.hall_name(hall)} 每日各时段平均等待",
        unit="分钟",
    )


# -- the page ----------------------------------------------------------------------------------

CSS = """
@page { size: A4; margin: 12mm; }
* { box-sizing: border-box; }
body { font-family: FONT; color: #1a1a1a; margin: 24px auto; max-width: 1100px;
       font-size: 14px; line-height: 1.5; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; border-bottom: 2px solid #0072B2; padding-bottom: 4px; margin-top: 32px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
.meta { color: #555; margin: 0 0 12px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 4px; font-size: 12.5px; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eef3f8; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
thead { display: table-header-group; }
.note { color: #555; font-size: 12px; margin: 2px 0 8px; }
.empty { color: #555; font-style: italic; }
figure { margin: 10px 0; }
svg.chart { width: 100%; max-width: 900px; height: auto; display: block; }
ul.defs { font-size: 12px; color: #444; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  h2 { break-before: page; }
  h2.first { break-before: auto; }
  tr, figure, svg { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
""".replace("FONT", svgchart.FONT)

SECTIONS = (
    ("一、概览", ("01-summary",)),
    ("二、高峰期应急处置", ("02-peak-episodes", "03-emergency-windows")),
    ("三、信息系统故障", ("04-system-outages",)),
    ("四、投诉处理", ("05-complaints", "06-complaints-by-hall", "07-complaints-by-person")),
    ("五、服务情况", ("08-service-by-day", "09-service-by-hour", "10-service-by-service")),
    ("六、设备运行", ("11-device-offline", "12-device-ranking")),
)


def _number(v: Cell) -> bool:
    if isinstance(v, int | float):
        return True
    return isinstance(v, str) and v.replace(".", "", 1).replace("%", "").isdigit()


def _table_html(t: Table, figs: Sequence[str]) -> str:
    parts = [f'<section id="{escape(t.slug)}"><h3>{escape(t.title)}</h3>']
    for svg in figs:
        parts.append(f"<figure>{svg}</figure>")
    if t.rows:
        parts.append("<table><thead><tr>")
        parts += [f"<th>{escape(c)}</th>" for c in t.columns]
        parts.append("</tr></thead><tbody>")
        for row in t.rows:
            cells = "".join(
                f'<td class="n">{escape(_cell(v))}</td>'
                if _number(v)
                else f"<td>{escape(_cell(v))}</td>"
                for v in row
            )
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</tbody></table>")
    else:
        parts.append('<p class="empty">本期无记录。</p>')
    if t.note:
        parts.append(f'<p class="note">注：{escape(t.note)}</p>')
    parts.append(f'<p class="note">数据文件：{escape(t.slug)}.csv</p></section>')
    return "".join(parts)


def _cell(v: Cell) -> str:
    if v is None:
        return NONE
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def render(r: Report) -> str:
    """The whole report as one HTML document."""
    f = Fmt(r)
    by_slug = {t.slug: t for t in tables(r)}
    figs = charts(r)
    halls = "、".join(r.settings.hall_name(h) for h in r.halls) or NONE
    title = f"住房公积金服务大厅运行报告 {r.period.start.isoformat()} 至 {r.period.end.isoformat()}"
    body = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        "<header><h1>住房公积金服务大厅运行报告</h1>",
        f'<p class="meta">统计期间：{r.period.start.isoformat()} 至 {r.period.end.isoformat()}'
        f"（{r.period.days}天）　大厅：{escape(halls)}"
        f"　生成时间：{escape(f.at(r.generated_at))}</p>",
        '<p class="meta">依据《住房公积金服务应急预案》：高峰期应急处置（四·一）、'
        "投诉处理（四·二）、信息系统故障处理（四·三）、考核评比与存档备查（五·一）、"
        "设备更新（五·五）。</p></header>",
    ]
    for i, (heading, slugs) in enumerate(SECTIONS):
        cls = ' class="first"' if i == 0 else ""
        body.append(f"<h2{cls}>{escape(heading)}</h2>")
        for slug in slugs:
            body.append(_table_html(by_slug[slug], figs.get(slug, [])))
    body.append(
        '<h2>说明</h2><ul class="defs">'
        "<li>全部数字由事件库中的原始事件按大厅、按日重放计算（与实时系统同一套处理与告警规则），"
        "同一天在不同报告中的数字一致。</li>"
        "<li>等待时间：取号（或转办）至叫号；办结：窗口完成办理。</li>"
        f"<li>高峰期：在厅{r.settings.rules.default.queue_peak.headcount}人或预计等待"
        f"{r.settings.rules.default.queue_peak.wait_s / 60:.0f}分钟，持续1分钟即启动；"
        "“等待回落用时”自启动起至预计等待稳定回到目标以下。</li>"
        f"<li>投诉答复期限：受理之日起{ANSWER_WORKING_DAYS}个工作日（按国家法定节假日及调休安排）。</li>"
        "<li>设备停机：设备报离线，或超过心跳超时未上报；只计营业时间。</li>"
        "</ul></body></html>"
    )
    return "".join(body)


def csv_text(t: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(t.columns)
    for row in t.rows:
        w.writerow([_cell(v) for v in row])
    return buf.getvalue()


def files(r: Report) -> dict[str, bytes]:
    """File name -> content: report.html and one CSV per table."""
    out = {"report.html": render(r).encode("utf-8")}
    for t in tables(r):
        out[f"{t.slug}.csv"] = csv_text(t).encode("utf-8-sig")
    return out


def write(r: Report, out_dir: str | Path) -> list[Path]:
    """Write report.html and the CSVs into `out_dir` (created); returns the paths."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files(r).items():
        p = d / name
        p.write_bytes(data)
        paths.append(p)
    return paths


def zip_bytes(r: Report) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files(r).items():
            z.writestr(name, data)
    return buf.getvalue()
