"""Two alert services on one PostgreSQL, as the instances "a" and "b" of a pair, for the tests
here: `async with pair(pg_url, settings) as (a, b):`; `stored_keys` lists the shared outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from hallwatch.alerts.claims import PgOutbox
from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.service import Alerts
from hallwatch.daemon.config.alerts import AlertSettings

from tests.alerts.test_alert_receiver import T0


async def started(settings: AlertSettings, outbox: Outbox, t0: float = T0) -> Alerts:
    """An alert service on `outbox`, started: its episodes as its last save left them (a new
    one on the same outbox is an instance restarted after kill -9)."""
    alerts = Alerts(settings, outbox, clock=lambda: t0)
    await alerts.start()
    return alerts


@asynccontextmanager
async def pair(pg_url: str, settings: AlertSettings) -> AsyncIterator[tuple[Alerts, Alerts]]:
    """Instances a and b, each with its own connection to the shared outbox in `pg_url`."""
    async with (
        PgOutbox(pg_url, instance="a") as oa,
        PgOutbox(pg_url, instance="b") as ob,
    ):
        yield await started(settings, oa), await started(settings, ob)


async def stored_keys(outbox: Outbox) -> list[str]:
    """Every notification key in the outbox, in the order stored."""
    async with outbox.db.execute("SELECT key FROM alert_outbox ORDER BY seq") as cur:
        return [str(r[0]) for r in await cur.fetchall()]
