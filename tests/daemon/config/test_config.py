"""Tests of config.settings: defaults, TOML, environment, overrides, and loud failures."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config.alerts_reader import read_alerts
from hallwatch.daemon.config.settings import Settings, load


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hallwatch.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file_or_env() -> None:
    """With no file, env or overrides, load gives the documented defaults."""
    s = load()
    # [alerts] is its reader's default (an SMS region filled in), every other section Settings()'s
    assert dataclasses.replace(s, alerts=Settings().alerts) == Settings()
    assert s.alerts == read_alerts({}, {})
    assert s.api.tokens == ()
    assert s.complaints.verify_working_days == 2
    assert s.alerts.rules.default.queue_peak.headcount == 20
    assert s.mqtt.broker().host == "127.0.0.1" and s.mqtt.broker().port == 1883
    assert s.http.host_port() == ("127.0.0.1", 9120)
    assert s.hall.timezone == "Asia/Shanghai"
    assert s.mqtt.password is None


def test_toml_values(tmp_path: Path) -> None:
    """Values from the TOML file replace the defaults, ints promoted to floats where needed."""
    path = write(
        tmp_path,
        """
[mqtt]
url = "mqtts://broker.example:8884"
topic_root = "hq"
reconnect_max_s = 60

[store]
path = "/var/lib/hallwatch/events.db"
batch_max = 100

[hall]
timezone = "Asia/Urumqi"
""",
    )
    s = load(path)
    assert s.mqtt.topic_root == "hq"
    assert s.mqtt.reconnect_max_s == 60.0 and isinstance(s.mqtt.reconnect_max_s, float)
    broker = s.mqtt.broker()
    assert (broker.host, broker.port, broker.tls) == ("broker.example", 8884, True)
    assert s.store.path == "/var/lib/hallwatch/events.db"
    assert s.store.batch_max == 100
    assert s.hall.timezone == "Asia/Urumqi"
    assert s.log.level == "INFO"  # untouched section keeps its defaults


def test_env_overrides_file(tmp_path: Path) -> None:
    """HALLWATCH_<SECTION>_<KEY> beats the file, and strings are converted to the key's type."""
    path = write(tmp_path, '[mqtt]\nurl = "mqtt://file-host:1883"\nkeepalive_s = 10\n')
    env = {
        "HALLWATCH_MQTT_URL": "mqtt://env-host:1999",
        "HALLWATCH_MQTT_KEEPALIVE_S": "45",
        "HALLWATCH_HALL_HEARTBEAT_TIMEOUT_S": "120",
    }
    s = load(path, env)
    assert s.mqtt.broker().host == "env-host" and s.mqtt.broker().port == 1999
    assert s.mqtt.keepalive_s == 45
    assert s.hall.heartbeat_timeout_s == 120.0


def test_password_file_is_read(tmp_path: Path) -> None:
    """HALLWATCH_MQTT_PASSWORD_FILE reads the secret from a file, trailing newline dropped."""
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cr3t-Pw\n", encoding="utf-8")
    s = load(
        env={
            "HALLWATCH_MQTT_PASSWORD_FILE": str(secret),
            "HALLWATCH_MQTT_USERNAME": "hallwatch",
        }
    )
    assert s.mqtt.password == "s3cr3t-Pw"
    broker = s.mqtt.broker()
    assert (broker.username, broker.password) == ("hallwatch", "s3cr3t-Pw")


def test_missing_password_file_names_the_key(tmp_path: Path) -> None:
    """An unreadable *_FILE is a ConfigError naming the key, not an OSError."""
    with pytest.raises(ConfigError) as info:
        load(env={"HALLWATCH_MQTT_PASSWORD_FILE": str(tmp_path / "absent")})
    assert info.value.key == "mqtt.password"


def test_overrides_beat_env(tmp_path: Path) -> None:
    """The overrides mapping (CLI flags) wins over env and file; None means not given."""
    path = write(tmp_path, '[http]\nlisten = "0.0.0.0:8000"\n')
    s = load(
        path,
        {"HALLWATCH_HTTP_LISTEN": "127.0.0.1:8001", "HALLWATCH_STORE_PATH": "env.db"},
        {"http.listen": "[::1]:8002", "store.path": None, "store.batch_max": 7},
    )
    assert s.http.host_port() == ("::1", 8002)
    assert s.store.path == "env.db"
    assert s.store.batch_max == 7


BAD: list[tuple[str, str | None, dict[str, str], dict[str, Any], str]] = [
    ("url scheme", None, {"HALLWATCH_MQTT_URL": "http://h:1883"}, {}, "mqtt.url"),
    ("url without host", '[mqtt]\nurl = "mqtt://:1883"\n', {}, {}, "mqtt.url"),
    ("port out of range", None, {"HALLWATCH_MQTT_URL": "mqtt://h:70000"}, {}, "mqtt.url"),
    ("port zero", None, {}, {"mqtt.url": "mqtt://h:0"}, "mqtt.url"),
    ("port not a number", None, {"HALLWATCH_MQTT_URL": "mqtt://h:abc"}, {}, "mqtt.url"),
    ("unknown section", "[mqt]\nurl = 'mqtt://h'\n", {}, {}, "mqt"),
    ("section not a table", "mqtt = 3\n", {}, {}, "mqtt"),
    ("unknown key", "[mqtt]\nhost = 'h'\n", {}, {}, "mqtt.host"),
    ("unknown override", None, {}, {"mqtt.hots": "h"}, "mqtt.hots"),
    ("wrong type in toml", "[mqtt]\nkeepalive_s = '30'\n", {}, {}, "mqtt.keepalive_s"),
    ("bool for an int", "[store]\nbatch_max = true\n", {}, {}, "store.batch_max"),
    ("number for a string", "[log]\nlevel = 10\n", {}, {}, "log.level"),
    ("wrong type in env", None, {"HALLWATCH_MQTT_KEEPALIVE_S": "soon"}, {}, "mqtt.keepalive_s"),
    ("not positive", "[mqtt]\nkeepalive_s = 0\n", {}, {}, "mqtt.keepalive_s"),
    ("bad time zone", "[hall]\ntimezone = 'Mars/Olympus'\n", {}, {}, "hall.timezone"),
    ("time zone is a directory", None, {"HALLWATCH_HALL_TIMEZONE": "Asia"}, {}, "hall.timezone"),
    ("time zone path", None, {"HALLWATCH_HALL_TIMEZONE": "../etc"}, {}, "hall.timezone"),
    ("listen without port", None, {}, {"http.listen": "localhost"}, "http.listen"),
    ("listen port too big", "[http]\nlisten = '127.0.0.1:65536'\n", {}, {}, "http.listen"),
    ("listen without host", None, {"HALLWATCH_HTTP_LISTEN": ":9120"}, {}, "http.listen"),
    (
        "reconnect max below min",
        "[mqtt]\nreconnect_min_s = 5\nreconnect_max_s = 1\n",
        {},
        {},
        "mqtt.reconnect_max_s",
    ),
    ("bad topic root", None, {"HALLWATCH_MQTT_TOPIC_ROOT": "hall/x"}, {}, "mqtt.topic_root"),
    ("bad log level", None, {"HALLWATCH_LOG_LEVEL": "LOUD"}, {}, "log.level"),
    ("bad synchronous", "[store]\nsynchronous = 'OFF'\n", {}, {}, "store.synchronous"),
    ("bad toml", "[mqtt\n", {}, {}, "--config"),
]


@pytest.mark.parametrize(
    ("text", "env", "overrides", "key"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_values_name_the_key(
    tmp_path: Path, text: str | None, env: dict[str, str], overrides: dict[str, Any], key: str
) -> None:
    """Each bad setting stops loading with a ConfigError whose `.key` names it."""
    path = write(tmp_path, text) if text is not None else None
    with pytest.raises(ConfigError) as info:
        load(path, env, overrides)
    assert info.value.key == key
    assert key in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    """A config path that does not exist is a ConfigError, not a crash."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "nope.toml")
    assert info.value.key == "--config"


def test_password_never_shown(tmp_path: Path) -> None:
    """Neither a password in a file, in the URL nor via *_FILE shows in repr or Broker.url()."""
    secret = tmp_path / "pw"
    secret.write_text("FILE-SECRET", encoding="utf-8")
    cases = [
        load(env={"HALLWATCH_MQTT_URL": "mqtt://alice:URL-SECRET@broker:1883"}),
        load(env={"HALLWATCH_MQTT_PASSWORD_FILE": str(secret), "HALLWATCH_MQTT_USERNAME": "a"}),
        load(write(tmp_path, '[mqtt]\nusername = "a"\npassword = "TOML-SECRET"\n')),
    ]
    for s in cases:
        broker = s.mqtt.broker()
        assert broker.password and broker.password.endswith("SECRET")
        for text in (repr(s), str(s), repr(s.mqtt), repr(broker), broker.url()):
            assert "SECRET" not in text, text
    assert cases[0].mqtt.broker().url() == "mqtt://alice@broker:1883"
    assert "broker:1883" in repr(cases[0])  # the URL is still shown, masked


def test_password_not_in_url_error() -> None:
    """A bad URL's error message masks the password it carries."""
    with pytest.raises(ConfigError) as info:
        load(env={"HALLWATCH_MQTT_URL": "mqtt://alice:URL-SECRET@broker:99999"})
    assert "URL-SECRET" not in str(info.value)


def test_env_is_not_read_implicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    """load reads only the mapping it is given, never os.environ by itself."""
    monkeypatch.setenv("HALLWATCH_MQTT_URL", "mqtt://from-os-environ:1")
    assert load().mqtt.url == "mqtt://127.0.0.1:1883"


def test_limits_section_maps_onto_every_cap_of_the_state_core() -> None:
    """`[limits]` has exactly the state core's caps, with its defaults, and builds them."""
    import msgspec
    from hallwatch.daemon.core.state import Limits

    caps = {f.name for f in msgspec.structs.fields(Limits)}
    assert {f.name for f in dataclasses.fields(load().limits)} == caps
    assert load().limits.limits() == Limits()
    assert load(None, {"HALLWATCH_LIMITS_TICKETS": "7"}).limits.limits().tickets == 7
