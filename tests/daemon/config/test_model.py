"""The settings engine on the model: layering, names in errors, did-you-mean, inheritance."""

from __future__ import annotations

from pathlib import Path

import pytest
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config import settings as config
from hallwatch.daemon.config.alerts_reader import read_alerts
from hallwatch.daemon.config.api import ApiSettings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hallwatch.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_each_layer_beats_the_one_below(tmp_path: Path) -> None:
    """One key set in all four layers takes each layer's value as the layers above are removed:
    flag > environment > file > default."""
    path = write(tmp_path, "[store]\nbatch_max = 10\n")
    env = {"HALLWATCH_STORE_BATCH_MAX": "20"}
    assert config.load(path, env, {"store.batch_max": 30}).store.batch_max == 30
    assert config.load(path, env, {"store.batch_max": "31"}).store.batch_max == 31
    assert config.load(path, env).store.batch_max == 20
    assert config.load(path, {}).store.batch_max == 10
    assert config.load(None, {}).store.batch_max == 500


def test_env_strings_become_the_keys_types() -> None:
    """Environment strings convert to float, int lists and string lists (comma-separated)."""
    s = config.load(
        None,
        {
            "HALLWATCH_HALL_TARGET_WAIT_S": "900",
            "HALLWATCH_CALENDAR_HOLIDAYS": "2026-01-01, 2026-01-02",
            "HALLWATCH_CALENDAR_COMPLETE_YEARS": "2025,2026",
            "HALLWATCH_MQTT_CA_FILE": "",
        },
    )
    assert s.hall.target_wait_s == 900.0 and isinstance(s.hall.target_wait_s, float)
    assert s.calendar.holidays == ("2026-01-01", "2026-01-02")
    assert s.calendar.complete_years == (2025, 2026)
    assert s.mqtt.ca_file is None


@pytest.mark.parametrize(
    ("toml", "key", "says"),
    [
        ("[mqtt]\ntopic_rot = 'x'\n", "mqtt.topic_rot", "did you mean topic_root?"),
        ("[alert]\nenabled = true\n", "alert", "did you mean alerts?"),
        ("[alerts.queue_peak]\nheadcont = 3\n", "alerts.queue_peak.headcont", "headcount"),
        (
            "[alerts.halls.h1.queue_peak]\nwait_s = -1\n",
            "alerts.halls.h1.queue_peak.wait_s",
            "at least 0, got -1",
        ),
        (
            "[alerts.roles.desk]\nsms = ['12']\n[alerts.sms]\nprovider = 'generic'\n"
            "endpoint = 'http://127.0.0.1:9'\n",
            "alerts.roles.desk.sms",
            "of the form",
        ),
        ("[outage.probes.tax]\nurl = 'http://x'\nhalls = []\n", "outage.probes.tax.halls", "empty"),
        ("[mqtt]\nreceive_maximum = 70000\n", "mqtt.receive_maximum", "must be 1-65535"),
        ("[log]\nlevel = 'LOUD'\n", "log.level", "one of DEBUG, INFO, WARNING, ERROR"),
    ],
)
def test_errors_name_the_key_and_the_rule(tmp_path: Path, toml: str, key: str, says: str) -> None:
    """A bad key, in any table or map entry, is named in full with what would be right."""
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, toml), {})
    assert err.value.key == key and says in str(err.value), str(err.value)


def test_a_secret_is_never_echoed_in_an_error() -> None:
    """A too-short token from the environment is refused naming its key, without showing it."""
    cfg = {"tokens": {"a": {"scopes": ["*"]}}}
    with pytest.raises(ConfigError) as err:
        ApiSettings.from_mapping(cfg, {"HALLWATCH_API_TOKENS_A_TOKEN": "SHORTSECRET"})
    assert err.value.key == "api.tokens.a.token"
    assert "SHORTSECRET" not in str(err.value) and "_FILE" in str(err.value)


def test_hall_rules_inherit_the_defaults_key_by_key() -> None:
    """A hall's [queue_peak] keeps the [alerts] values it does not set, and its own times."""
    s = read_alerts(
        {
            "queue_peak": {"headcount": 30, "clear_headcount": 25},
            "open": "08:30",
            "halls": {"h1": {"queue_peak": {"wait_s": 600, "clear_wait_s": 300}}},
        },
        {},
    )
    h1 = s.rules.for_hall("h1")
    assert (h1.queue_peak.headcount, h1.queue_peak.wait_s) == (30, 600.0)
    assert str(h1.open) == "08:30:00"
    assert s.rules.default.queue_peak.wait_s == 1200.0


def test_an_unknown_flag_key_suggests_the_right_one() -> None:
    """A flag (override) naming a misspelt key is refused with the key it resembles."""
    with pytest.raises(ConfigError) as err:
        config.load(None, {}, {"store.pth": "x.db"})
    assert err.value.key == "store.pth" and "did you mean path?" in str(err.value)
