"""HTTP endpoints mounted on the daemon's aiohttp app.

POST /api/v1/alerts/{id}/ack                 acknowledge (body optional: {"by": "name"})
POST /api/v1/alertmanager/webhook            Alertmanager webhook (version 4) -> WeCom / SMS
GET  /api/v1/alerts                          firing alerts
GET  /api/v1/alerts/dead-letters             notifications given up on
POST /api/v1/alerts/dead-letters/{seq}/retry send a dead letter again
With a token configured, everything but GET /api/v1/alerts needs `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from alerts.outbox import Outbox
from alerts.service import Alerts

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False)


def add_routes(app: web.Application, engine: Alerts, outbox: Outbox, token: str | None) -> None:
    """Mount the alert endpoints; `engine` is the running `Alerts` service."""

    def guarded(handler: Handler) -> Handler:
        async def check(request: web.Request) -> web.StreamResponse:
            if token:
                given = request.headers.get("Authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                    return _json({"error": "unauthorized"}, 401)
            return await handler(request)

        return check

    async def ack(request: web.Request) -> web.StreamResponse:
        by = "api"
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return _json({"error": "body must be JSON"}, 400)
            if isinstance(body, dict) and isinstance(body.get("by"), str) and body["by"]:
                by = body["by"][:64]
        e = await engine.ack(request.match_info["id"], by)
        if e is None:
            return _json({"error": "no such firing alert"}, 404)
        return _json({"ok": True, "alert_id": e.alert_id, "acked_by": e.acked_by})

    async def webhook(request: web.Request) -> web.StreamResponse:
        try:
            payload = await request.json()
        except ValueError:
            return _json({"error": "body must be JSON"}, 400)
        if not isinstance(payload, dict):
            return _json({"error": "body must be a JSON object"}, 400)
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
                        "target": n.target,
                        "created": n.created,
                        "attempts": n.attempts,
                        "last_error": n.last_error,
                    }
                    for n in rows
                ]
            }
        )

    async def retry(request: web.Request) -> web.StreamResponse:
        try:
            seq = int(request.match_info["seq"])
        except ValueError:
            return _json({"error": "seq must be an integer"}, 400)
        if not await outbox.requeue(seq, engine.now()):
            return _json({"error": "no such dead letter"}, 404)
        return _json({"ok": True, "seq": seq})

    app.router.add_post("/api/v1/alerts/{id}/ack", guarded(ack))
    app.router.add_post("/api/v1/alertmanager/webhook", guarded(webhook))
    app.router.add_get("/api/v1/alerts", active)
    app.router.add_get("/api/v1/alerts/dead-letters", guarded(dead))
    app.router.add_post("/api/v1/alerts/dead-letters/{seq}/retry", guarded(retry))
