"""A sender for the two-instance test: enqueue N WeCom notifications (the same keys in every
instance) into the shared PostgreSQL outbox, then dispatch them, claiming with a lease.

python -m tests.harness.claimer URL INSTANCE WECOM_BASE N LEASE_S
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
from hallwatch.alerts.channels.wecom import WecomChannel
from hallwatch.alerts.claims import PgOutbox
from hallwatch.alerts.dispatcher import Dispatcher
from hallwatch.alerts.outbox import NewNotification
from hallwatch.daemon.config.alerts import OutboxSettings, Robot


def notes(n: int) -> list[NewNotification]:
    """The notifications of a peak: one message each, in order, to one supervisor robot."""
    return [
        NewNotification(
            f"peak-{i:03d}/wecom/sup",
            "wecom",
            "sup",
            {"msgtype": "markdown", "content": f"第{i}条"},
        )
        for i in range(n)
    ]


async def main(url: str, instance: str, base: str, n: int, lease_s: float) -> None:
    async with (
        PgOutbox(url, instance=instance, lease_s=lease_s) as outbox,
        aiohttp.ClientSession() as session,
    ):
        added = await outbox.enqueue(notes(n), now=time.time())
        print(f"enqueued {added}", flush=True)
        robots = {"sup": Robot(f"{base}/cgi-bin/webhook/send", "robot-sup")}
        channels = {"wecom": WecomChannel(session, robots, clock=time.time, timeout_s=5)}
        settings = OutboxSettings(retry_base_s=0.2, retry_cap_s=0.5)
        await Dispatcher(outbox, channels, settings, clock=time.time, idle_s=0.2).run()


if __name__ == "__main__":
    url, instance, base, n, lease = sys.argv[1:6]
    asyncio.run(main(url, instance, base, int(n), float(lease)))
