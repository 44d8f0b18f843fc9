"""The whole alert chain in real processes with `store.url` on a private PostgreSQL: door events
through Mosquitto, the daemon's rules, the shared outbox, a WeCom-style receiver."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import psycopg
from hallwatch.sensors.publish import publish_all

from tests.alerts.test_alert_e2e import config, door, wait_for
from tests.conftest import DaemonProcess
from tests.harness.alert_fakes import FakeWecom, serve
from tests.harness.mosquitto import Mosquitto


async def test_peak_reaches_the_robot_through_the_postgres_outbox(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess], tmp_path: Path, pg_url: str
) -> None:
    """A crowd fires queue_peak; the notification is stored in the shared outbox in PostgreSQL,
    claimed by this instance and sent once; a restart sends nothing again."""
    wecom = FakeWecom()
    async with serve(wecom.app()) as url:
        env = {
            "HALLWATCH_CONFIG": str(config(tmp_path, url)),
            "HALLWATCH_STORE_URL": pg_url,
            "HALLWATCH_STORE_INSTANCE": "hw-a",
        }
        d = daemon_factory(broker.url, extra_env=env)
        await asyncio.to_thread(d.start)
        pub = [door(0, 100, 100), door(1, 125, 100)]
        await asyncio.to_thread(publish_all, "127.0.0.1", broker.port, pub)
        await wait_for(lambda: bool(wecom.accepted), 30, "the WeCom message")
        assert "25" in wecom.accepted[0].body["markdown"]["content"]
        assert await asyncio.to_thread(d.stop, signal.SIGTERM) == 0
        with psycopg.connect(pg_url) as con:
            rows = con.execute("SELECT key, state, claimed_by FROM hallwatch.alert_outbox")
            got = rows.fetchall()
            state = con.execute('SELECT count(*) FROM "hallwatch_hw-a".alert_state').fetchone()
        assert [(r[1], r[2]) for r in got] == [("sent", "hw-a")]
        assert "/queue_peak:" not in got[0][0] and got[0][0].startswith("h1:queue_peak:")
        assert state == (1,)  # the engine's state, in this instance's schema
        await asyncio.to_thread(d.start)
        await asyncio.sleep(3.0)  # a tick or two after the restart
        assert len(wecom.accepted) == 1
