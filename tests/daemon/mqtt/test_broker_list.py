"""`mqtt.more_urls`: a bad address stops start-up naming the key; each (re)connect of a client
goes to the next broker, `url` first; passwords stay out of the settings' repr."""

from __future__ import annotations

import pytest
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config import settings as config
from hallwatch.daemon.mqtt.client import next_broker


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
