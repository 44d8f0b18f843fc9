"""The drill report (plan 预案学习): from a drill hall's day, who acknowledged, how fast, and which
of the plan's steps were missed. Pure: the centre's report (`figures.Report`) in, findings out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hallwatch.daemon.reports.figures import Report

ACK_WITHIN_S = 15 * 60  # the alert repeats every 15 minutes until someone acknowledges
CALLBACK_AFTER_S = 30 * 60  # plan 4.3: after half an hour, customers are told and called back


@dataclass(frozen=True, slots=True)
class Finding:
    at: float
    step: str  # the plan's step, in Chinese
    done: bool
    detail: str


def _clock(rep: Report, ts: float) -> str:
    return datetime.fromtimestamp(ts, rep.settings.zone).strftime("%H:%M")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} 分钟"


def findings(rep: Report, *, ack_within_s: float = ACK_WITHIN_S) -> list[Finding]:
    """Every step the drill called for, in time order, done or missed."""
    out: list[Finding] = []
    for p in rep.peaks:
        out.append(Finding(p.fired_at, "高峰告警触发", True, f"{_clock(rep, p.fired_at)} 触发"))
        ack = p.ack_s
        if ack is not None and ack <= ack_within_s:
            out.append(Finding(p.fired_at, "确认告警", True, f"{p.acked_by}，{_minutes(ack)}"))
        else:
            late = f"{p.acked_by}，{_minutes(ack)}后才确认" if ack is not None else "无人确认"
            out.append(Finding(p.fired_at, "确认告警", False, f"未在 15 分钟内确认（{late}）"))
        opened = len(p.emergency_opened) + p.emergency_at_start
        out.append(
            Finding(
                p.fired_at,
                "增开应急窗口",
                opened > 0,
                f"增开 {opened} 个" if opened else "高峰期间未增开应急窗口",
            )
        )
    for o in rep.outages:
        out.append(
            Finding(
                o.start,
                "通知信息中心",
                o.alert_level > 0,
                f"{_clock(rep, o.start)} {o.system} 中断" + ("" if o.alert_level else "，未告警"),
            )
        )
        lasted = o.duration_s
        if lasted is None or lasted >= CALLBACK_AFTER_S:
            n = o.callbacks or 0
            out.append(
                Finding(
                    o.start + CALLBACK_AFTER_S,
                    "登记回访客户",
                    n > 0,
                    f"登记 {n} 位" if n else "超过半小时未登记回访客户",
                )
            )
    for c in rep.complaints:
        if c.severity == "serious":
            out.append(
                Finding(
                    c.received_at,
                    "严重投诉报主任室",
                    bool(c.escalated),
                    c.complaint_id if c.escalated else f"{c.complaint_id} 未上报",
                )
            )
        out.append(
            Finding(
                c.received_at,
                "投诉核查答复",
                c.answered_at is not None,
                f"{c.complaint_id} 已答复"
                if c.answered_at is not None
                else f"{c.complaint_id} 演练结束时仍未答复（期限 {c.due.isoformat()}）",
            )
        )
    return sorted(out, key=lambda f: f.at)


def text(rep: Report, found: list[Finding]) -> str:
    """The drill report as plain text for the terminal and the drill's minutes."""
    lines = [f"演练报告 {rep.hall_filter or ''} {rep.period.start} – {rep.period.end}".strip()]
    if not found:
        lines.append("（这段时间没有演练记录）")
    for f in found:
        mark = "✓" if f.done else "✗ 遗漏"
        lines.append(f"{_clock(rep, f.at)}  {mark}  {f.step}：{f.detail}")
    missed = sum(1 for f in found if not f.done)
    lines.append(f"共 {len(found)} 项，遗漏 {missed} 项")
    return "\n".join(lines)
