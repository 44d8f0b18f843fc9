"""The one JSON body reader of every HTTP handler (the staff API, the Alertmanager receiver):
400 with a JSON reason for anything that is not JSON (nested 60,000 deep included), never 500.
Here, below both the web side and the alerts, so that neither imports the other for it."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; `web.HTTPBadRequest` (JSON, with the reason) if it is not."""
    raw = await request.read()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python goes
        raise web.HTTPBadRequest(
            text=_dumps({"error": "bad_json", "message": "body must be JSON"}),
            content_type="application/json",
        ) from None


async def read_object(request: web.Request) -> dict[str, Any]:
    """`read_json`, and it must be an object."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=_dumps({"error": "bad_json", "message": "body must be a JSON object"}),
            content_type="application/json",
        )
    return body


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
