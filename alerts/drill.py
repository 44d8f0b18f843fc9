"""Drills (plan 预案学习): a hall whose id starts with `drill` is a drill hall.

Everything it causes is marked 【演练】 and reaches only the roles configured for that hall itself
(`[alerts.halls.drill-h1.roles.*]`), never the centre's default roles: an unconfigured drill hall
reaches nobody. Drill alerts are not pushed to Alertmanager (its receivers page real people).
Pure: notifications in, marked notifications out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from hallwatch.alerts.messages import SMS_MAX, WECOM_MARKDOWN_MAX, WECOM_TEXT_MAX, fit_bytes
from hallwatch.alerts.outbox import NewNotification

PREFIX = "drill"
MARK = "【演练】"
NOTE = "本消息为应急演练，非真实事件；请按预案步骤操作并确认。"
# An SMS keeps its head (the alert's name) and its end (the action and the alert's number).
_SMS_HEAD = 20


def is_drill(hall: str) -> bool:
    return hall.startswith(PREFIX)


def sms(text: str) -> str:
    """【演练】 + the SMS, cut in the middle when it would pass one segment."""
    out = MARK + text
    if len(out) <= SMS_MAX:
        return out
    keep_tail = SMS_MAX - len(MARK) - _SMS_HEAD - 1
    return MARK + text[:_SMS_HEAD] + "…" + text[-keep_tail:]


def _payload(channel: str, body: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(body)
    if channel == "sms":
        out["text"] = sms(str(body.get("text", "")))
        params = dict(body.get("params") or {})
        if "event" in params:
            params["event"] = (MARK + str(params["event"]))[:20]
        out["params"] = params
    elif channel == "wecom" and body.get("msgtype") == "markdown":
        content = f"**{MARK}** {NOTE}\n" + str(body.get("content", ""))
        out["content"] = fit_bytes(content, WECOM_MARKDOWN_MAX)
    elif channel == "wecom":
        out["content"] = fit_bytes(MARK + str(body.get("content", "")), WECOM_TEXT_MAX)
    else:  # webhooks: a field a machine can read
        out["drill"] = True
    return out


def mark(notes: Iterable[NewNotification]) -> list[NewNotification]:
    """The notifications of a drill hall: marked, and none to Alertmanager."""
    return [
        replace(n, payload=_payload(n.channel, n.payload))
        for n in notes
        if n.channel != "alertmanager"
    ]
