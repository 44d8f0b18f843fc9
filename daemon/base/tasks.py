"""Stopping tasks that do not want to stop."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

log = logging.getLogger("hallwatch")


async def cancel_all(tasks: list[asyncio.Task[Any]], within: float) -> None:
    """Cancel `tasks` and wait for them, cancelling again every half second: on Python 3.11 a
    cancel that lands as an awaited future completes is lost inside `asyncio.wait_for`
    (gh-86296), and aiomqtt's publish and subscribe wait that way. Reports stragglers."""
    pending = set(tasks)
    deadline = time.monotonic() + within
    while pending and time.monotonic() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    for task in pending:
        log.error("task %s did not stop within %.0f s:", task.get_name(), within)
        task.print_stack(file=sys.stderr)
