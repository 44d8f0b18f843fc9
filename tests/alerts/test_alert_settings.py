"""The [alerts] settings: defaults from the plan, secrets from env or files, errors name keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config.alerts_reader import read_alerts

ROBOT = {"wecom": {"robots": {"supervisor": {}}}}


def test_defaults_are_the_plan() -> None:
    """With no config: 20 people / 20 min, 09:00-17:00, 60 s for, clear below 15 for 120 s."""
    s = read_alerts({}, {})
    p = s.rules.default.queue_peak
    assert (p.headcount, p.wait_s, p.for_s, p.clear_headcount, p.clear_for_s) == (
        20, 1200.0, 60.0, 15, 120.0,
    )  # fmt: skip
    assert str(s.rules.default.open) == "09:00:00" and str(s.rules.default.close) == "17:00:00"
    assert s.rules.level_roles == (("supervisor",), ("supervisor", "director"))


def test_robot_key_from_env_and_never_in_repr() -> None:
    """The robot key comes from HALLWATCH_ALERTS_WECOM_ROBOTS_SUPERVISOR_KEY and repr hides it."""
    env = {"HALLWATCH_ALERTS_WECOM_ROBOTS_SUPERVISOR_KEY": "s3cr3t-key"}
    s = read_alerts(ROBOT, env)
    assert s.wecom.robots["supervisor"].key == "s3cr3t-key"
    assert "s3cr3t" not in repr(s)


def test_secret_from_file(tmp_path: Path) -> None:
    """`*_FILE` names a file holding the secret."""
    f = tmp_path / "k"
    f.write_text("file-key\n")
    env = {"HALLWATCH_ALERTS_WECOM_ROBOTS_SUPERVISOR_KEY_FILE": str(f)}
    assert read_alerts(ROBOT, env).wecom.robots["supervisor"].key == "file-key"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (ROBOT, "alerts.wecom.robots.supervisor.key"),
        ({"queue_peak": {"headcount": "many"}}, "alerts.queue_peak.headcount"),
        ({"open": "9am"}, "alerts.open"),
        ({"halls": {"h1": {"close": "08:00"}}}, "alerts.halls.h1.close"),
        ({"roles": {"supervisor": {"wecom": ["nope"]}}}, "alerts.roles.supervisor.wecom"),
        ({"roles": {"supervisor": {"sms": ["13800000000"]}}}, "alerts.roles.supervisor.sms"),
        ({"sms": {"provider": "aliyun"}}, "alerts.sms.access_key_id"),
        ({"wecom": {"per_minute": 30}}, "alerts.wecom.per_minute"),
        ({"bogus": 1}, "alerts.bogus"),
    ],
)
def test_bad_values_name_the_key(data: dict[str, object], key: str) -> None:
    """Every bad value raises ConfigError naming its key."""
    with pytest.raises(ConfigError) as err:
        read_alerts(data, {})
    assert err.value.key == key


def test_bad_url_error_does_not_echo_the_key() -> None:
    """An invalid robot URL is reported without the query string that may hold a key."""
    data = {"wecom": {"robots": {"r": {"key": "k", "url": "ftp://x/send?key=SECRET"}}}}
    with pytest.raises(ConfigError) as err:
        read_alerts(data, {})
    assert "SECRET" not in str(err.value)
