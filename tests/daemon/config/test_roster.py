"""The duty roster ([duty]): who is on duty when, hall over centre, errors naming the key."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config import settings as config

TZ = ZoneInfo("Asia/Shanghai")
ROSTER = """
[duty]
public_url = "https://hw.example.cn/"
[duty.roles.supervisor.people.zhang]
name = "张伟"
phone = "13800000001"
wecom = "zhangwei"
days = ["mon", "tue", "wed", "thu", "fri"]
start = "08:30"
end = "17:30"
[duty.roles.supervisor.people.wang]
name = "王芳"
days = ["fri"]
start = "22:00"
end = "06:00"
[duty.roles.director.people.li]
name = "李主任"
[duty.halls.h2.roles.supervisor.people.zhao]
name = "赵敏"
days = ["sat", "sun"]
start = "09:00"
end = "12:00"
"""


def load(tmp_path: Path, text: str) -> config.Settings:
    path = tmp_path / "hallwatch.toml"
    path.write_text(text, "utf-8")
    return config.load(path, {})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_on_duty_by_weekday_and_hours_overnight_and_all_day(tmp_path: Path) -> None:
    """Monday 10:00: 张伟; Monday 18:00: nobody; Friday 23:00 and Saturday 05:59: 王芳 (overnight,
    belonging to Friday), Saturday 06:00 nobody; 李主任 (no hours given) always."""
    d = load(tmp_path, ROSTER).duty
    assert list(d.on_duty("h1", "supervisor", at("2026-11-30T10:00"))) == ["zhang"]
    assert list(d.on_duty("h1", "supervisor", at("2026-11-30T18:00"))) == []
    assert list(d.on_duty("h1", "supervisor", at("2026-12-04T23:00"))) == ["wang"]
    assert list(d.on_duty("h1", "supervisor", at("2026-12-05T05:59"))) == ["wang"]
    assert list(d.on_duty("h1", "supervisor", at("2026-12-05T06:00"))) == []
    assert list(d.on_duty("h1", "supervisor", at("2026-12-04T05:00"))) == []  # Thu night: no
    assert list(d.on_duty("h1", "director", at("2026-12-06T03:00"))) == ["li"]
    assert d.people("h1", "supervisor")["zhang"].shift() == "周一至周五 08:30-17:30"
    assert d.people("h1", "supervisor")["wang"].shift() == "周五 22:00-次日06:00"


def test_a_hall_that_names_a_role_replaces_the_centre_people_of_that_role(tmp_path: Path) -> None:
    """h2's supervisors are its own (赵敏 on weekend mornings); its director is the centre's."""
    d = load(tmp_path, ROSTER).duty
    assert list(d.people("h2", "supervisor")) == ["zhao"]
    assert list(d.on_duty("h2", "supervisor", at("2026-12-05T10:00"))) == ["zhao"]
    assert list(d.on_duty("h2", "supervisor", at("2026-11-30T10:00"))) == []
    assert list(d.people("h2", "director")) == ["li"]


@pytest.mark.parametrize(
    ("toml", "key", "says"),
    [
        ("[duty.roles.supervisr.people.a]\nname='x'", "duty.roles.supervisr", "supervisor"),
        (
            "[duty.halls.h1.roles.director.people.a]\nname='x'\nstart='24:00'",
            "duty.halls.h1.roles.director.people.a.start",
            "HH:MM",
        ),
        (
            "[duty.roles.supervisor.people.a]\nname='x'\ndays=[]",
            "duty.roles.supervisor.people.a.days",
            "at least one",
        ),
        (
            "[duty.roles.supervisor.people.a]\nname='x'\ndays=['monday']",
            "duty.roles.supervisor.people.a.days",
            "mon",
        ),
        (
            "[duty.roles.supervisor.people.a]\nphone='13800000001'",
            "duty.roles.supervisor.people.a.name",
            "",
        ),
        (
            "[duty.roles.supervisor.people.a]\nname='x'\nphone='call me'",
            "duty.roles.supervisor.people.a.phone",
            "digits",
        ),
        ("[duty.roles.supervisor.people.a]\nname=''", "duty.roles.supervisor.people.a.name", ""),
        ("[duty]\nkey='too-short'", "duty.key", "32"),
        ("[duty]\npublic_url='hw.example.cn'", "duty.public_url", ""),
        ("[duty]\nlink_ttl_s=10.0", "duty.link_ttl_s", ""),
    ],
)
def test_bad_roster_stops_start_up_naming_the_key(
    tmp_path: Path, toml: str, key: str, says: str
) -> None:
    """Every bad roster value is a ConfigError naming its full key."""
    with pytest.raises(ConfigError) as err:
        load(tmp_path, toml)
    assert err.value.key == key, str(err.value)
    assert says in str(err.value)


def test_the_key_may_come_from_a_file_and_is_never_shown(tmp_path: Path) -> None:
    """HALLWATCH_DUTY_KEY_FILE sets duty.key; the settings' repr leaves it out."""
    secret = tmp_path / "key"
    secret.write_text("s" * 40 + "\n")
    path = tmp_path / "hallwatch.toml"
    path.write_text("[duty]\n", "utf-8")
    s = config.load(path, {"HALLWATCH_DUTY_KEY_FILE": str(secret)})
    assert s.duty.key == "s" * 40 and "s" * 40 not in repr(s)
