"""`mqtt.more_urls`: a bad address stops start-up naming the key; each (re)connect of a client
goes to the next broker, `url` first; passwords stay out of the settings' repr; the log names
the broker actually connected."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config import settings as config
from hallwatch.daemon.mqtt.client import next_broker

from tests.conftest import DaemonProcess, wait_until
from tests.harness.mosquitto import Mosquitto, free_port


def test_a_bad_address_names_the_key() -> None:
    """An http:// address in more_urls is refused, naming mqtt.more_urls."""
    with pytest.raises(ConfigError, match=r"mqtt\.more_urls"):
        config.load(None, {"HALLWATCH_MQTT_MORE_URLS": "mqtt://n2:1883,http://n3"})


def test_reconnects_go_round_the_list() -> None:
    """url, then each of more_urls, then url again; the user of url where a node names none;
    the password masked in repr."""
    s = config.load(
        None,
        {
            "HALLWATCH_MQTT_URL": "mqtt://hw:pw@n1:1883",
            "HALLWATCH_MQTT_MORE_URLS": "mqtt://n2:1884, mqtt://other:secret@n3:1885",
            "HALLWATCH_MQTT_CLIENT_ID": "round-the-list",
        },
    )
    got = [next_broker(s, "round-the-list") for _ in range(4)]
    assert [(b.host, b.port) for b in got] == [
        ("n1", 1883),
        ("n2", 1884),
        ("n3", 1885),
        ("n1", 1883),
    ]
    assert (got[1].username, got[1].password) == ("hw", "pw")
    assert got[2].username == "other"
    assert "secret" not in repr(s.mqtt) and "pw" not in repr(s.mqtt)


def test_the_log_names_the_broker_actually_connected(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    """With `url` down and `more_urls` naming a live broker, the log's "connected to" line and
    the failed attempt's line each name the broker that was tried, not `url` for both."""
    dead = f"mqtt://127.0.0.1:{free_port()}"
    d = daemon_factory(dead, extra_env={"HALLWATCH_MQTT_MORE_URLS": broker.url})
    d.start()
    wait_until(lambda: f"connected to {broker.url}" in d.log.read_text(), 10, "the log line")
    log = d.log.read_text()
    assert f"broker {dead}:" in log, log
    assert f"connected to {dead}" not in log, log
    assert d.stop(signal.SIGTERM) == 0
