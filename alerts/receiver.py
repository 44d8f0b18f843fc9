"""HTTP endpoints mounted on the daemon's aiohttp app.

POST /api/v1/alerts/{id}/ack                 acknowledge (body optional: {"by": "name"})
POST /api/v1/alertmanager/webhook            Alertmanager webhook (version 4) -> WeCom / SMS
GET  /api/v1/alerts                          firing alerts
GET  /api/v1/alerts/dead-letters             notifications given up on
POST /api/v1/alerts/dead-letters/{seq}/retry send a dead letter again
Who may call which is `config.api`'s route table (alerts:read, alerts:write, alerts:forward).

What Alertmanager sends is relayed to people's phones and groups, so the receiver takes at most
`alerts.forward.max_alerts` alerts a request (413 beyond) and passes on only a cleaned copy:
the fields it uses, strings without control or direction characters, `<` and `>` (WeCom's
mention and font markup) replaced, each string and each label set cut to a bound.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.service import Alerts
from hallwatch.daemon.base.jsonbody import read_json

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_LABELS = 32  # labels (and annotations) kept per alert
MAX_KEY = 64
MAX_LABEL_VALUE = 200
MAX_ANNOTATION = 1000
MAX_ID = 128  # fingerprint, timestamps
_FINGERPRINT = re.compile(r"[0-9A-Za-z]{1,64}")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def clean_text(value: Any, limit: int) -> str:
    """A string fit to relay: control, format (bidi overrides, zero-width) and separator
    characters become spaces, `<` and `>` become their full-width forms, at most `limit`."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)[:limit]
        except (ValueError, RecursionError):
            text = "…"
    out = []
    for ch in text[: limit * 2]:
        cat = unicodedata.category(ch)
        if cat[0] == "C" or cat in ("Zl", "Zp"):
            out.append(" ")
        elif ch == "<":
            out.append("＜")
        elif ch == ">":
            out.append("＞")
        else:
            out.append(ch)
    cleaned = " ".join("".join(out).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _clean_map(value: Any, limit: int) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, str] = {}
    for k, v in list(value.items())[:MAX_LABELS]:
        out[clean_text(k, MAX_KEY)] = clean_text(v, limit)
    return out


def clean_alert(alert: Any) -> dict[str, Any]:
    """The fields of one Alertmanager alert that the service reads, cleaned and bounded."""
    if not isinstance(alert, Mapping) or not isinstance(alert.get("labels"), Mapping):
        raise ValueError("every alert needs a labels object")
    out: dict[str, Any] = {
        "labels": _clean_map(alert["labels"], MAX_LABEL_VALUE),
        "annotations": _clean_map(alert.get("annotations"), MAX_ANNOTATION),
    }
    if isinstance(alert.get("status"), str):
        out["status"] = "resolved" if alert["status"] == "resolved" else "firing"
    if alert.get("startsAt"):
        out["startsAt"] = clean_text(alert["startsAt"], MAX_ID)
    fp = alert.get("fingerprint")
    if isinstance(fp, str) and _FINGERPRINT.fullmatch(fp):
        out["fingerprint"] = fp
    return out


def clean_payload(payload: Any, max_alerts: int) -> dict[str, Any]:
    """A webhook payload reduced to what is relayed; ValueError if it is not one, and
    `OverflowError` if it holds more than `max_alerts` alerts."""
    if not isinstance(payload, Mapping):
        raise ValueError("body must be a JSON object")
    alerts = payload.get("alerts")
    if str(payload.get("version")) != "4" or not isinstance(alerts, list):
        raise ValueError('expected an Alertmanager webhook payload, version "4"')
    if len(alerts) > max_alerts:
        raise OverflowError(
            f"{len(alerts)} alerts in one request; at most {max_alerts} "
            "(set max_alerts in Alertmanager's webhook_config)"
        )
    status = "resolved" if payload.get("status") == "resolved" else "firing"
    return {"version": "4", "status": status, "alerts": [clean_alert(a) for a in alerts]}


def add_routes(app: web.Application, engine: Alerts, outbox: Outbox) -> None:
    """Mount the alert endpoints; `engine` is the running `Alerts` service."""
    max_alerts = engine.settings.forward.max_alerts

    async def ack(request: web.Request) -> web.StreamResponse:
        by = "api"
        if request.body_exists:
            body = await read_json(request)
            if isinstance(body, dict) and isinstance(body.get("by"), str) and body["by"]:
                by = clean_text(body["by"], 64)
        e = await engine.ack(request.match_info["id"], by)
        if e is None:
            return _json({"error": "no such firing alert"}, 404)
        return _json({"ok": True, "alert_id": e.alert_id, "acked_by": e.acked_by})

    async def webhook(request: web.Request) -> web.StreamResponse:
        try:
            payload = clean_payload(await read_json(request), max_alerts)
        except OverflowError as err:
            return _json({"error": "too_many_alerts", "message": str(err)}, 413)
        except ValueError as err:
            return _json({"error": str(err)}, 400)
        try:
            queued = await engine.forward(payload)
        except ValueError as err:
            return _json({"error": str(err)}, 400)
        return _json({"ok": True, "queued": queued})

    async def active(request: web.Request) -> web.StreamResponse:
        return _json({"alerts": engine.active()})

    async def dead(request: web.Request) -> web.StreamResponse:
        rows = await outbox.dead_letters()
        return _json(
            {
                "dead_letters": [
                    {
                        "seq": n.seq,
                        "key": n.key,
                        "channel": n.channel,
                        "target": n.target,  # a phone number for SMS: masked by web.auth
                        "created": n.created,
                        "attempts": n.attempts,
                        "last_error": n.last_error,
                    }
                    for n in rows
                ]
            }
        )

    async def retry(request: web.Request) -> web.StreamResponse:
        raw = request.match_info["seq"]
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            return _json({"error": "seq must be an integer"}, 400)
        seq = int(raw)
        if not await outbox.requeue(seq, engine.now()):
            return _json({"error": "no such dead letter"}, 404)
        return _json({"ok": True, "seq": seq})

    app.router.add_post("/api/v1/alerts/{id}/ack", ack)
    app.router.add_post("/api/v1/alertmanager/webhook", webhook)
    app.router.add_get("/api/v1/alerts", active)
    app.router.add_get("/api/v1/alerts/dead-letters", dead)
    app.router.add_post("/api/v1/alerts/dead-letters/{seq}/retry", retry)
