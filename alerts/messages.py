"""Alert text in Simplified Chinese: a one-line summary, WeCom markdown, SMS.

Every function is pure. WeCom markdown is cut to 4,096 bytes and text messages to 2,048 bytes
(the robot's documented limits); an SMS is kept to one 70-character segment.

The acknowledgement of an alert that is not resolved: the WeCom message carries, per role it
reaches, the signed link to the phone page (or, without `duty.public_url`, the code); an SMS
carries the 10-character code (a link does not fit one segment with the alert's number and
first action), typed in on the page at `{public_url}/ack`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hallwatch.alerts.view import Figures, Transition
from hallwatch.daemon.base import glossary

WECOM_MARKDOWN_MAX = 4096
WECOM_TEXT_MAX = 2048
SMS_MAX = 70

UNRELIABLE_NAMES = {"headcount": "厅内人数", "wait": "等候时间"}
REASONS = {"cleared": "", "closed": "营业时间结束", "gone": "设备/系统已移除"}


@dataclass(frozen=True, slots=True)
class Names:
    """Display names: the hall's, and the services' (codes as a fallback)."""

    hall: str
    services: Mapping[str, str] = field(default_factory=dict)

    def service(self, code: str | None) -> str:
        return self.services.get(code or "", code or "")


def minutes(seconds: float) -> int:
    return max(0, round(seconds / 60))


def duration(seconds: float) -> str:
    m = minutes(seconds)
    return f"{m // 60}小时{m % 60}分" if m >= 60 else f"{m}分钟"


def fit_bytes(text: str, limit: int) -> str:
    """`text` cut on a character boundary so its UTF-8 form is at most `limit` bytes."""
    data = text.encode()
    if len(data) <= limit:
        return text
    cut = data[: limit - len("…".encode())].decode("utf-8", "ignore")
    return cut + "…"


def _crossed(f: Figures, services: Mapping[str, str] | None = None) -> str:
    parts = []
    for c in f.crossed:
        if c.metric == "headcount":
            parts.append(f"厅内{int(c.value)}人(≥{int(c.threshold)})")
        else:
            # "endured": someone still waiting has waited this long; "wait": the forecast.
            name = (services or {}).get(c.service or "", c.service or "")
            what = "已有人等待" if c.metric == "endured" else "预计等待"
            parts.append(f"{name}{what}{minutes(c.value)}分钟(≥{minutes(c.threshold)})")
    return "，".join(parts)


def summary(
    *,
    alert: str,
    state: str,
    hall_name: str,
    subject: str,
    figures: Figures,
    peak: Figures | None,
    duration_s: float,
    reason: str,
) -> str:
    """One line for logs of transitions, the replay output and Alertmanager's `summary`."""
    what = glossary.ALERTS.get(alert, alert)
    head = f"{hall_name}{what}"
    if alert == "queue_peak":
        if state == "resolved" and peak is not None:
            wait = f"，最长预计等待{minutes(peak.max_wait_s or 0)}分钟" if peak.max_wait_s else ""
            if peak.max_endured_s:
                wait += f"，最长已等待{minutes(peak.max_endured_s)}分钟"
            why = f"（{REASONS[reason]}）" if REASONS.get(reason) else ""
            return f"{head}已结束{why}：持续{duration(duration_s)}，峰值{peak.headcount}人{wait}"
        now = _crossed(figures) or f"厅内{figures.headcount}人"
        cause = "（信息系统故障导致）" if figures.caused_by_outage else ""
        return f"{head}{glossary.ALERT_STATES[state]}{cause}：{now}"
    if alert == "service_uncovered":
        return _uncovered_summary(head, state, subject, figures, duration_s)
    kind = (
        glossary.DEVICE_KINDS.get(figures.device_kind or "", "")
        if alert == "device_offline"
        else "系统"
    )
    if state == "resolved":
        why = f"（{REASONS[reason]}）" if REASONS.get(reason) else ""
        return f"{head}已结束{why}：{kind}{subject}，持续{duration(duration_s)}"
    if alert == "system_outage" and state == "firing":
        return f"{head}{glossary.ALERT_STATES[state]}：{kind}{subject}故障，请立即通知信息中心"
    if alert == "system_degraded" and state == "firing":
        return f"{head}{glossary.ALERT_STATES[state]}：{kind}{subject}运行缓慢，请通知信息中心排查"
    return f"{head}{glossary.ALERT_STATES[state]}：{kind}{subject}已{duration(duration_s)}"


def _uncovered_summary(head: str, state: str, service: str, f: Figures, duration_s: float) -> str:
    if state == "resolved":
        now = "已无人等候" if f.service_waiting == 0 else "已有窗口办理"
        return f"{head}已结束：{service}{now}，持续{duration(duration_s)}"
    return (
        f"{head}{glossary.ALERT_STATES[state]}：{service}有{f.service_waiting}人等候，"
        f"{duration(f.uncovered_s)}无窗口办理"
    )


def uncovered_actions(service: str, lunch: tuple[str, ...] = ()) -> list[str]:
    """The plan's answer to a service nobody serves: open a window for it (午间轮班). In a slot
    of the hall's lunch rotation (`lunch`: the slots under way) the rotation comes first."""
    open_one = f"立即为 **{service}** 开放窗口：调配能办理该业务的人员，或增设应急窗口"
    explain = "向等候的办事人说明情况；老弱病残优先办理"
    if lunch:
        rota = (
            f"午间轮班：请安排 **{service}** 窗口轮流就餐，保持服务不断档"
            f"（本时段就餐：{'、'.join(lunch)}）"
        )
        return [rota, open_one, explain]
    return [open_one, "午间轮班：每项业务始终至少有一个窗口办理，不停办", explain]


DEGRADED_ACTIONS = (
    "立即通知市中心信息中心排查网络和系统（信息网络不畅）",
    "办理可能变慢：向办事人说明，必要时引导错峰办理",
    "如转为中断，按信息系统故障预案处置：先收件后补录，半小时未恢复回拨登记",
)

OUTAGE_ACTIONS = (
    "立即通知市中心信息中心",
    "短时可恢复：先审查纸质资料，系统恢复后再录入",
    "半小时内无法恢复：告知办事人预计恢复时间，经同意留下电话（回拨登记），恢复后短信通知",
    "做好对办事人的解释工作",
)


def _actions(t: Transition, names: Names) -> list[str]:
    """The plan's peak procedure, with the estimator's numbers."""
    f = t.figures
    out = []
    extra = [(names.service(s), n) for s, n in f.extra_windows_by_service]
    if extra:
        total = sum(n for _, n in extra)
        detail = "、".join(f"{s}{n}个" for s, n in extra)
        out.append(f"增设应急窗口 **{total}** 个：{detail}")
    elif f.spare_windows == 0:
        out.append("窗口已全部开放，无窗口可增设：调配人员加快办理")
    else:
        out.append("增设应急窗口，调配人员和设备")
    if f.all_open_overrun_s is not None and f.all_open_overrun_s > 0:
        out.append(
            f"即使开放全部{f.spare_windows or 0}个空闲窗口，闭厅后仍需约 "
            f"**{minutes(f.all_open_overrun_s)}** 分钟才能办完：延长对外服务时间，"
            "并对业务集中的办事人实行预约服务"
        )
    out.append("开设绿色通道，老弱病残优先办理；业务集中、批次多的实行预约服务")
    out.append("设置高低峰时段提醒牌，引导错峰办理")
    hour = int(t.local_time[:2]) if t.local_time[:2].isdigit() else 0
    if f.closing_overrun_s is not None and f.closing_overrun_s > 0:
        out.append(
            f"按当前排队，闭厅后约 **{minutes(f.closing_overrun_s)}** 分钟才能办完："
            "延长对外服务时间"
        )
    if 11 <= hour < 14:
        out.append("午间轮班，不停办")
    return out


@dataclass(frozen=True, slots=True)
class AckRef:
    """How one role acknowledges: a signed link, or a code to type in at `entry`."""

    role: str
    link: str | None = None
    code: str = ""
    entry: str = ""


def ack_lines(acks: Sequence[AckRef]) -> list[str]:
    """The acknowledgement lines of a WeCom message: one link (or code) per role."""
    out = []
    for a in acks:
        who = glossary.ROLES.get(a.role, a.role)
        if a.link:
            out.append(f"[{who}点此确认（可填已开应急窗口数）]({a.link})")
        elif a.code:
            where = f"在 {a.entry} " if a.entry.startswith("http") else "在值班确认页"
            out.append(f"{who}确认：{where}输入确认码 **{a.code}**")
    return out


def wecom_markdown(
    t: Transition, names: Names, userids: tuple[str, ...] = (), acks: Sequence[AckRef] = ()
) -> str:
    """The WeCom markdown message of a transition (≤ 4,096 bytes); `acks`: how each role
    acknowledges (left out of a resolved alert's message)."""
    f = t.figures
    title = glossary.ALERTS.get(t.alert, t.alert)
    color = "info" if t.state == "resolved" else "warning"
    state = glossary.ALERT_STATES.get(t.state, t.state)
    lines = [f'## <font color="{color}">【{title}{state}】</font>{names.hall}']
    if t.state == "resolved":
        lines.append(f"> {t.summary}")
    else:
        who = "、".join(glossary.ROLES.get(r, r) for r in t.recipients)
        lines.append(f"> 级别：{glossary.LEVELS.get(t.level, str(t.level))}　通知：{who}")
        if t.state == "relapsed":
            lines.append("**刚结束的高峰再次出现**：同一编号继续处置，不另起新告警")
        if t.alert == "queue_peak":
            lines.append(f"**触发**：{_crossed(f, names.services) or t.summary}")
            wait = ""
            if f.max_endured_s is not None:
                svc = names.service(f.max_endured_service)
                wait += f"，最长已等待{minutes(f.max_endured_s)}分钟({svc})"
            if f.max_wait_s is not None:
                svc = names.service(f.max_wait_service)
                wait += f"，最长预计等待{minutes(f.max_wait_s)}分钟({svc})"
            lines.append(
                f"**现状**：厅内{f.headcount}人，等候{f.waiting_total}人{wait}；"
                f"开放窗口{f.windows_open}个(应急{f.emergency_windows_open}个)"
            )
            if f.unreliable:
                what = "、".join(UNRELIABLE_NAMES.get(u, u) for u in f.unreliable)
                lines.append(f'<font color="comment">注意：有设备离线，{what}估算可能不准</font>')
            if f.caused_by_outage:
                # The queue grows because nothing can be processed: staffing advice would
                # blame the windows for the stoppage. The outage procedure applies instead.
                systems = "、".join(f.caused_by_outage)
                lines.append(
                    f"**原因**：信息系统故障导致（{systems}），业务无法办理，非窗口效率问题"
                )
                lines.append("**按信息系统故障预案处置**：")
                lines += [f"{i}. {a}" for i, a in enumerate(OUTAGE_ACTIONS, 1)]
            else:
                lines.append("**按应急预案处置**：")
                lines += [f"{i}. {a}" for i, a in enumerate(_actions(t, names), 1)]
        elif t.alert == "service_uncovered":
            svc = names.service(t.subject)
            endured = (
                f"，最长已等待{minutes(f.service_endured_s)}分钟"
                if f.service_endured_s is not None
                else ""
            )
            lines.append(
                f"**{svc}** 有{f.service_waiting}人等候，已{duration(f.uncovered_s)}"
                f"没有开放窗口办理{endured}"
            )
            lines.append("**按应急预案处置**：")
            lines += [f"{i}. {a}" for i, a in enumerate(uncovered_actions(svc, f.lunch), 1)]
        elif t.alert == "device_offline":
            kind = glossary.DEVICE_KINDS.get(f.device_kind or "", glossary.DEVICE_KINDS["other"])
            lines.append(f"**{kind} {t.subject}** 已离线{duration(t.at - t.started_at)}")
            feeds = {
                "door_counter": "厅内人数",
                "ticket_machine": "等候时间",
                "window_terminal": "等候时间",
            }.get(f.device_kind or "")
            if feeds:
                lines.append(f"离线期间{feeds}估算不可靠。")
            lines.append("请检查设备电源和网络，必要时启用备用设备。")
        elif t.alert == "system_degraded":
            lines.append(f"**业务系统 {t.subject}** 运行缓慢已{duration(t.at - t.started_at)}")
            lines.append("**按应急预案处置**：")
            lines += [f"{i}. {a}" for i, a in enumerate(DEGRADED_ACTIONS, 1)]
        else:
            lines.append(f"**业务系统 {t.subject}** 故障已{duration(t.at - t.started_at)}")
            if t.state == "escalated":
                lines.append("**已超过半小时未恢复，大厅转入回拨登记**")
            lines.append("**按应急预案处置**：")
            lines += [f"{i}. {a}" for i, a in enumerate(OUTAGE_ACTIONS, 1)]
        started = f"开始 {t.local_time}　" if t.state == "firing" else ""
        lines.append(
            f'<font color="comment">{started}编号 {t.alert_id}（确认后停止重复提醒）</font>'
        )
        lines += ack_lines(acks)
    if userids:
        lines.append(" ".join(f"<@{u}>" for u in userids))
    return fit_bytes("\n".join(lines), WECOM_MARKDOWN_MAX)


def wecom_mention(t: Transition, names: Names) -> str:
    """The short text message that carries the @mobile mentions (markdown cannot)."""
    return fit_bytes(f"请及时处理：{t.summary}", WECOM_TEXT_MAX)


def sms_text(t: Transition, names: Names, code: str = "") -> str:
    """One SMS segment (≤ 70 characters). The first action, the alert's number and the
    acknowledgement `code` always fit: when the whole does not, the summary is what is cut."""
    tail = ""
    if t.alert == "queue_peak" and t.state != "resolved" and not t.figures.caused_by_outage:
        extra = sum(n for _, n in t.figures.extra_windows_by_service)
        tail += f"，建议增设{extra}个窗口" if extra else "，请按预案处置"
    if t.alert == "service_uncovered" and t.state != "resolved":
        tail += f"，请立即为{names.service(t.subject)}开窗口"
    if t.state not in ("resolved",):
        tail += f"。编号{t.alert_id.rsplit(':', 1)[-1][-4:]}"
        if code and len(tail) + len(code) + 4 <= SMS_MAX - 10:  # a summary of 10 at least
            tail += f"，确认码{code}"
    head = t.summary
    if len(head) + len(tail) > SMS_MAX:
        head = head[: SMS_MAX - len(tail) - 1] + "…"
    return head + tail


def sms_params(t: Transition, names: Names) -> dict[str, str]:
    """Template variables for providers that send approved templates only (Aliyun, Tencent).

    The template must use `${hall}`, `${event}` and `${detail}` (Aliyun) or {1}, {2}, {3}
    in that order (Tencent); each value is kept to 20 characters.
    """
    event = f"{glossary.ALERTS.get(t.alert, t.alert)}{glossary.ALERT_STATES.get(t.state, t.state)}"
    detail = t.summary.split("：", 1)[-1]
    return {"hall": names.hall[:20], "event": event[:20], "detail": detail[:20]}


def forwarded_markdown(alert: Mapping[str, Any], status: str) -> str:
    """A WeCom message for one alert that Alertmanager sent to our webhook receiver."""
    labels = alert.get("labels") or {}
    notes = alert.get("annotations") or {}
    name = str(labels.get("alertname", "告警"))
    color = "info" if status == "resolved" else "warning"
    head = "已恢复" if status == "resolved" else "告警"
    lines = [f'## <font color="{color}">【{head}】</font>{name}']
    text = notes.get("summary") or notes.get("description") or notes.get("message")
    if text:
        lines.append(f"> {text}")
    shown = {k: v for k, v in labels.items() if k != "alertname"}
    if shown:
        lines.append("　".join(f"{k}={v}" for k, v in sorted(shown.items())))
    if alert.get("startsAt"):
        lines.append(f'<font color="comment">开始 {alert["startsAt"]}</font>')
    return fit_bytes("\n".join(lines), WECOM_MARKDOWN_MAX)


def forwarded_sms(alert: Mapping[str, Any], status: str) -> str:
    labels = alert.get("labels") or {}
    notes = alert.get("annotations") or {}
    head = "已恢复" if status == "resolved" else "告警"
    text = f"【{head}】{labels.get('alertname', '')}：{notes.get('summary', '')}"
    return text if len(text) <= SMS_MAX else text[: SMS_MAX - 1] + "…"
