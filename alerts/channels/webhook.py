"""A generic JSON webhook: POST the stored payload with an `Idempotency-Key` header."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from hallwatch.alerts.channels import FAILED, Result, by_status, request
from hallwatch.alerts.outbox import Notification
from hallwatch.daemon.config.alerts import Webhook


class WebhookChannel:
    name = "webhook"

    def __init__(self, session: aiohttp.ClientSession, hooks: Mapping[str, Webhook]) -> None:
        self._session, self._hooks = session, hooks

    def ready_at(self, note: Notification, now: float) -> float:
        return now

    async def send(self, note: Notification) -> Result:
        hook = self._hooks.get(note.target)
        if hook is None:
            return Result(FAILED, f"no webhook {note.target!r} configured")
        headers = {"Idempotency-Key": note.key}
        if hook.token:
            headers["Authorization"] = f"Bearer {hook.token}"
        reply = await request(
            self._session,
            "POST",
            hook.url,
            timeout_s=hook.timeout_s,
            json=note.payload,
            headers=headers,
        )
        return reply if isinstance(reply, Result) else by_status(reply, "webhook")
