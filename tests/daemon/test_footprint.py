"""What a daemon on the embedded default carries: nothing of the PostgreSQL backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import DaemonProcess
from tests.harness.mosquitto import Mosquitto


def test_the_sqlite_default_never_loads_the_postgres_driver(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    """`hallwatch run` on SQLite, connected and serving: no psycopg module or libpq mapped in
    the process (importing them cost 20 MiB of RSS, a seventh of the 500-hall budget)."""
    d = daemon_factory(broker.url)
    d.start()
    assert d.pid is not None
    maps = Path(f"/proc/{d.pid}/maps").read_text()
    assert "libpq" not in maps and "psycopg" not in maps
    assert d.stop() == 0
