"""The daemon as a real process with `store.url` on a private PostgreSQL and a real Mosquitto:
kill -9 mid-stream loses and duplicates nothing; two daemons keep a log each."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
from hallwatch.sensors.publish import publish_all

from tests.conftest import DaemonProcess, wait_until
from tests.daemon.mqtt.test_ingest import issued
from tests.harness.mosquitto import Mosquitto
from tests.harness.postgres import Postgres


def counts(url: str, instance: str) -> tuple[int, int]:
    """(events, distinct keys) in `instance`'s log."""
    with psycopg.connect(url) as con:
        row = con.execute(
            f'SELECT count(*), count(DISTINCT key) FROM "hallwatch_{instance}".events'
        )
        got = row.fetchone()
    assert got is not None
    return int(got[0]), int(got[1])


def pg_env(url: str, instance: str) -> dict[str, str]:
    return {"HALLWATCH_STORE_URL": url, "HALLWATCH_STORE_INSTANCE": instance}


def test_kill9_mid_stream_on_postgres_counts_each_event_once(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess], pg_url: str
) -> None:
    """kill -9 amid 5,000 QoS 1 events stored in PostgreSQL, then a restart: nothing acked
    before its commit is lost, nothing redelivered is stored or counted twice."""
    d = daemon_factory(broker.url, extra_env=pg_env(pg_url, "a"))
    d.start()
    n = 5000
    pub = threading.Thread(
        target=publish_all, args=("127.0.0.1", broker.port, [issued(i, run="k") for i in range(n)])
    )
    pub.start()
    wait_until(lambda: int(d.health()["last_seq"]) >= 500, what="some events to be stored")
    d.kill9()
    before = counts(pg_url, "a")[0]
    assert before < n, "the kill should land mid-stream"
    pub.join(120)
    d.start()
    wait_until(lambda: d.sample("hallwatch_tickets_today", hall="h1", event="issued") == n, 60)
    assert counts(pg_url, "a") == (n, n)
    assert d.total("hallwatch_queue_waiting", hall="h1") == n
    # The restart rebuilt the state from PostgreSQL, not from the broker's redelivery alone.
    assert d.sample("hallwatch_restore_replayed_events") == before
    # Events, outbox and registers are all in PostgreSQL: no SQLite file was made.
    assert not d.db.exists()


def test_two_daemons_one_database_keep_a_log_each(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess], pg_url: str
) -> None:
    """Two daemons (own client ids and instances) on one PostgreSQL both store and count every
    event: each instance's log holds all of them once."""
    a = daemon_factory(broker.url, extra_env=pg_env(pg_url, "a"))
    b = daemon_factory(broker.url, extra_env=pg_env(pg_url, "b"))
    b.env["HALLWATCH_MQTT_CLIENT_ID"] = "hallwatch-test-b"
    a.start()
    b.start()
    n = 300
    publish_all("127.0.0.1", broker.port, [issued(i, run="two") for i in range(n)])
    for d in (a, b):
        wait_until(lambda d=d: d.sample("hallwatch_tickets_today", hall="h1", event="issued") == n)
    assert counts(pg_url, "a") == counts(pg_url, "b") == (n, n)
    assert a.sample("hallwatch_instance_info", instance="a") == 1
    assert b.sample("hallwatch_instance_info", instance="b") == 1
    assert b.sample("hallwatch_outbox_taken_over_total", instance="b") == 0


def test_database_gone_stops_the_daemon_and_loses_nothing(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    """PostgreSQL stopped under a running daemon: it stops (exit 1, naming the store) without
    acknowledging what it did not store; with the database back, a restart counts every event
    once."""
    workdir = Path(tempfile.mkdtemp(prefix="pg-hallwatch-gone-", dir="/tmp"))
    pg = Postgres(workdir)
    try:
        pg.start()
        url = pg.database("gone")
        d = daemon_factory(broker.url, extra_env=pg_env(url, "a"))
        d.start()
        publish_all("127.0.0.1", broker.port, [issued(i, run="x") for i in range(100)])
        wait_until(lambda: d.sample("hallwatch_tickets_today", hall="h1", event="issued") == 100)
        pg.stop()
        publish_all("127.0.0.1", broker.port, [issued(i, run="y") for i in range(200)])
        wait_until(lambda: d.exited() is not None, 60, "the daemon to stop")
        assert d.stop() == 1
        assert "stopping; events not stored were not acknowledged" in d.log.read_text()
        pg.start()
        d.start()
        wait_until(lambda: d.sample("hallwatch_tickets_today", hall="h1", event="issued") == 300)
        assert counts(url, "a") == (300, 300)
    finally:
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
