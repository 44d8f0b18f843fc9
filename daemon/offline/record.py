"""`hallwatch record`: input topics from the broker to a recorded-day file, in arrival order."""

from __future__ import annotations

import asyncio
import os
import time

import aiomqtt
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.mqtt.client import tls_params
from hallwatch.daemon.mqtt.ingest import subscriptions
from hallwatch.daemon.offline.replay import record_line


async def record(
    settings: Settings, out: str, *, count: int | None = None, duration: float | None = None
) -> int:
    """Append every input message to `out` until `count` messages or `duration` seconds."""
    broker = settings.mqtt.broker()
    written = 0
    deadline = None if duration is None else time.monotonic() + duration
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        identifier=f"{settings.mqtt.client_id}-record-{os.getpid()}",
        tls_params=tls_params(settings),
    ) as client:
        await client.subscribe(subscriptions(settings.mqtt.topic_root, settings.mqtt.halls))
        with open(out, "a", encoding="utf-8") as fh:  # noqa: ASYNC230 - small appends
            it = aiter(client.messages)
            while count is None or written < count:
                timeout = None if deadline is None else deadline - time.monotonic()
                if timeout is not None and timeout <= 0:
                    break
                try:
                    msg = await asyncio.wait_for(anext(it), timeout)
                except TimeoutError:
                    break
                payload = msg.payload if isinstance(msg.payload, bytes) else b""
                fh.write(record_line(msg.topic.value, payload) + "\n")
                fh.flush()
                written += 1
    return written
