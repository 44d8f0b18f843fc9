"""The report's tables, titled and in page order, with the labels and number formats they use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from hallwatch.daemon.base import glossary
from hallwatch.daemon.reports.figures import Report
from hallwatch.daemon.reports.incidents import tally
from hallwatch.daemon.reports.stats import Accuracy, WaitStats

REASONS = {"cleared": "已缓解", "closed": "营业结束", "gone": "—"}
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
    return [
        _summary(r),
        _peaks(r, f),
        _emergency_windows(r, f),
        _outages(r, f),
        *_complaints(r, f),
        *_service(r),
        *_devices(r, f),
    ]


def _summary(r: Report) -> Table:
    """The overview (概览): one row per hall."""
    return Table(
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
    )


def _peaks(r: Report, f: Fmt) -> Table:
    """The peak procedure, episode by episode."""
    name = r.settings.hall_name
    return Table(
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
                glossary.LEVELS.get(p.level, str(p.level)),
                "、".join(f"{f.clock(t)}({glossary.LEVELS.get(lv, lv)})" for t, lv in p.escalations)
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
        note=("" if r.acks_recorded else "确认用时：告警服务未保存该时段的确认记录，显示为“—”。"),
    )


def _emergency_windows(r: Report, f: Fmt) -> Table:
    """Every emergency window opened."""
    name = r.settings.hall_name
    return Table(
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
    )


def _outages(r: Report, f: Fmt) -> Table:
    """Information system outages and their call-backs."""
    name = r.settings.hall_name
    return Table(
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
                glossary.SYSTEM_STATES.get(o.state, o.state),
                o.detail or NONE,
                o.tickets_issued,
                glossary.LEVELS.get(o.alert_level, NONE),
                Fmt.count(o.callbacks),
                Fmt.count(o.notified),
            )
            for o in r.outages
        ),
        note="" if r.callbacks_recorded else "回访登记簿尚未接入，回访与通知人数显示为“—”。",
    )


def _complaints(r: Report, f: Fmt) -> list[Table]:
    """Complaints one by one, then counted by hall and by person."""
    name = r.settings.hall_name
    comp_note = "" if r.complaints_recorded else "投诉办理记录尚未接入：答复、上报与回访显示为“—”。"
    out = [
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
                    glossary.COMPLAINT_CHANNELS.get(c.channel, c.channel),
                    glossary.SEVERITIES.get(c.severity, c.severity),
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
    ]
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
    return out


def _service(r: Report) -> list[Table]:
    """Service by day, by hour of issue and by service (with the estimate's accuracy)."""
    name = r.settings.hall_name
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
    return [
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
    ]


def _devices(r: Report, f: Fmt) -> list[Table]:
    """Device downtime and the failure ranking."""
    name = r.settings.hall_name
    return [
        Table(
            "11-device-offline",
            "设备离线记录（营业时间内）",
            ("大厅", "设备", "类型", "离线", "恢复", "营业时间内停机"),
            tuple(
                (
                    name(d.hall),
                    d.device,
                    glossary.DEVICE_KINDS.get(d.kind, d.kind),
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
                    glossary.DEVICE_KINDS.get(k.kind, k.kind),
                    k.failures,
                    Fmt.dur(k.downtime_s),
                    Fmt.dur(k.longest_s),
                )
                for i, k in enumerate(r.ranking, 1)
            ),
        ),
    ]


def _emergency(at_start: int, opened: Sequence[tuple[str, float]], f: Fmt) -> str:
    parts = [f"启动时已开{at_start}个"] if at_start else []
    parts += [f"{w} {f.clock(t)}开启" for w, t in opened]
    return "；".join(parts) or "未开启"


def _back_under(over: bool, s: float | None) -> str:
    if not over:
        return "未超过20分钟"
    return Fmt.dur(s) if s is not None else "未回落"
