"""A process for the kill -9 test: enqueue N webhook notifications, then dispatch them.

python -m alerts._crashtest DB URL N
Enqueueing is idempotent (same keys), so a restarted run adds nothing and sends what is left.
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
from hallwatch.alerts.channels.webhook import WebhookChannel
from hallwatch.alerts.dispatcher import Dispatcher
from hallwatch.alerts.outbox import NewNotification, Outbox
from hallwatch.daemon.config.alerts import OutboxSettings, Webhook


async def main(db: str, url: str, n: int) -> None:
    async with Outbox(db) as outbox, aiohttp.ClientSession() as session:
        notes = [NewNotification(f"crash-{i:04d}", "webhook", "sink", {"i": i}) for i in range(n)]
        await outbox.enqueue(notes, now=time.time())
        print("enqueued", flush=True)
        channels = {"webhook": WebhookChannel(session, {"sink": Webhook(url, timeout_s=5)})}
        settings = OutboxSettings(retry_base_s=0.1, retry_cap_s=0.5)
        await Dispatcher(outbox, channels, settings, clock=time.time, idle_s=0.1).run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
