"""Tests of config.hours: `[hours]` per hall with centre defaults, the old keys as defaults,
checks naming the full key, the lunch rotation's coverage warning, `hallwatch check-config`."""

from __future__ import annotations

import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config.settings import load
from hallwatch.daemon.core.hours import Lunch

TWO_HALLS = """
[hours]
open = "09:00"
close = "17:00"
lunch = [{window = "w3", from = "11:30", to = "12:30"}]

[hours.halls.east]
close = "16:30"
lunch = [
  {window = "w1", from = "11:30", to = "12:30"},
  {window = "w2", from = "12:30", to = "13:30"},
]
windows = {w1 = ["贷款"], w2 = ["提取"]}

[alerts.halls.west]
name = "西区"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hallwatch.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refused(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, text), env or {})
    return err.value


def test_hall_hours_override_the_centre_and_reach_the_alert_rules(tmp_path: Path) -> None:
    """east closes at 16:30 with its own rotation; west (only in [alerts.halls]) and an unknown
    hall take the centre's 09:00-17:00 and its lunch; the alert rules read the same hours."""
    s = load(write(tmp_path, TWO_HALLS), {})
    east, west = s.hours.for_hall("east"), s.hours.for_hall("west")
    assert (east.open, east.close) == (time(9), time(16, 30))
    assert east.lunch == (
        Lunch("w1", time(11, 30), time(12, 30)),
        Lunch("w2", time(12, 30), time(13, 30)),
    )
    assert east.windows == {"w1": ("贷款",), "w2": ("提取",)}
    assert west.close == time(17) and west.lunch == (Lunch("w3", time(11, 30), time(12, 30)),)
    assert s.hours.for_hall("nowhere") == s.hours.default
    rules = s.alerts.rules
    assert (rules.for_hall("east").open, rules.for_hall("east").close) == (time(9), time(16, 30))
    assert rules.for_hall("east").lunch == east.lunch
    assert rules.for_hall("west").name == "西区" and rules.for_hall("west").lunch == west.lunch
    assert s.hall.closing == "17:00"  # the centre's, for the readers of one closing


def test_closing_must_follow_opening(tmp_path: Path) -> None:
    """A hall closing before it opens stops start-up naming the key the hall set (its own
    closing, an old key's, or its opening after the centre's closing)."""
    err = refused(tmp_path, '[hours.halls.east]\nopen = "10:00"\nclose = "09:30"\n')
    assert err.key == "hours.halls.east.close"
    assert refused(tmp_path, '[hours]\nclose = "08:00"\n').key == "hours.close"
    old = '[hours]\nopen = "10:00"\n[alerts.halls.h1]\nclose = "09:30"\n'
    assert refused(tmp_path, old).key == "alerts.halls.h1.close"  # where the closing came from
    late = '[hours]\nclose = "12:00"\n[hours.halls.h1]\nopen = "13:00"\n'
    assert refused(tmp_path, late).key == "hours.halls.h1.open"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('lunch = [{window = "w1", from = "11:30", to = "12:70"}]', "hours.lunch[0].to"),
        ('lunch = [{window = "w1", form = "11:30", to = "12:30"}]', "hours.lunch[0].form"),
        ('lunch = [{window = "w1", to = "12:30"}]', "hours.lunch[0].from"),
        ('lunch = [{window = "w1", from = "12:30", to = "12:00"}]', "hours.lunch[0].to"),
        ('lunch = [{window = "", from = "11:30", to = "12:30"}]', "hours.lunch[0].window"),
        ('lunch = ["w1 11:30-12:30"]', "hours.lunch[0]"),
        ('lunch = {window = "w1"}', "hours.lunch"),
        ('lunch = [{window = "w1", from = "08:00", to = "09:30"}]', "hours.lunch[0]"),
        ('opne = "09:00"', "hours.opne"),
    ],
)
def test_bad_lunch_slots_name_their_full_key(tmp_path: Path, text: str, key: str) -> None:
    """A bad lunch slot (bad time, unknown or missing key, ends before it starts, outside the
    hours) or an unknown key stops start-up naming the full key."""
    assert refused(tmp_path, f"[hours]\n{text}\n").key == key


def test_a_hall_lunch_is_checked_against_its_own_hours(tmp_path: Path) -> None:
    """A hall's own slot outside its hours names the slot; the centre's rotation outside a
    shorter hall's hours names the hall's lunch (give it its own); an unknown window too."""
    own = (
        '[hours.halls.east]\nclose = "12:00"\n'
        'lunch = [{window = "w1", from = "11:30", to = "12:30"}]\n'
    )
    assert refused(tmp_path, own).key == "hours.halls.east.lunch[0]"
    inherited = (
        '[hours]\nlunch = [{window = "w1", from = "12:00", to = "13:00"}]\n'
        '[hours.halls.east]\nclose = "12:00"\n'
    )
    err = refused(tmp_path, inherited)
    assert err.key == "hours.halls.east.lunch" and "hours.lunch[0]" in str(err)
    unknown = (
        '[hours.halls.east]\nlunch = [{window = "w9", from = "11:30", to = "12:30"}]\n'
        'windows = {w1 = ["贷款"]}\n'
    )
    assert refused(tmp_path, unknown).key == "hours.halls.east.lunch[0].window"
    typo = refused(tmp_path, '[hours.halls.east]\nclsoe = "16:00"\n')
    assert typo.key == "hours.halls.east.clsoe" and "did you mean close" in str(typo)


def test_toml_local_times_are_accepted(tmp_path: Path) -> None:
    """A slot written with TOML local times (11:30:00, unquoted) reads like "11:30"."""
    s = load(
        write(tmp_path, "[hours]\nlunch = [{window = 'w1', from = 11:30:00, to = 12:30:00}]\n")
    )
    assert s.hours.default.lunch == (Lunch("w1", time(11, 30), time(12, 30)),)


def test_the_old_keys_are_the_defaults_with_a_warning(tmp_path: Path) -> None:
    """alerts.open/close, alerts.halls.ID.open/close and hall.closing (file or environment)
    still set the hours where [hours] leaves them unset, each with a warning saying where to
    move it; the estimator's closing and the alert rules' agree."""
    text = '[alerts]\nopen = "08:30"\nclose = "17:30"\n[alerts.halls.h1]\nclose = "16:00"\n'
    s = load(write(tmp_path, text), {})
    assert (s.hours.default.open, s.hours.default.close) == (time(8, 30), time(17, 30))
    assert s.hours.for_hall("h1").close == time(16) and s.hours.for_hall("h1").open == time(8, 30)
    assert s.alerts.rules.for_hall("h1").close == time(16)
    assert s.hall.closing == "17:30"
    assert any("alerts.close is read as hours.close" in w for w in s.warnings)
    assert any("alerts.halls.h1.close is read as hours.halls.h1.close" in w for w in s.warnings)
    old = load(None, {"HALLWATCH_HALL_CLOSING": "16:45"})
    assert old.hours.default.close == time(16, 45)
    assert old.alerts.rules.default.close == time(16, 45)
    assert any("hall.closing is read as hours.close" in w for w in old.warnings)
    assert load(None, {}).warnings == ()


def test_two_closing_times_that_disagree_stop_start_up(tmp_path: Path) -> None:
    """hall.closing 17:00 (given) with alerts.close 17:30, or [hours] against an old key: one
    closing time per hall, start-up stops naming the key that disagrees; equal ones are fine."""
    err = refused(tmp_path, '[hall]\nclosing = "17:00"\n[alerts]\nclose = "17:30"\n')
    assert err.key == "hall.closing" and "alerts.close" in str(err)
    err = refused(tmp_path, '[hours]\nclose = "16:00"\n[alerts]\nclose = "17:30"\n')
    assert err.key == "alerts.close"
    err = refused(tmp_path, '[hours.halls.h1]\nopen = "08:00"\n[alerts.halls.h1]\nopen = "08:30"\n')
    assert err.key == "alerts.halls.h1.open"
    same = load(write(tmp_path, '[hall]\nclosing = "23:59"\n[alerts]\nclose = "23:59"\n'))
    assert same.hours.default.close == time(23, 59)


def test_a_rotation_that_leaves_a_service_uncovered_is_a_warning(tmp_path: Path) -> None:
    """east's w1 (the only loan window) at lunch 11:30-12:30 leaves 贷款 uncovered: a warning
    naming the hall's lunch, the stretch, the service and the window; 提取 (w2 away 12:30-13:30,
    served by nobody else) too; windows that serve each other's service say nothing."""
    s = load(write(tmp_path, TWO_HALLS), {})
    gaps = [w for w in s.warnings if "lunch rotation" in w]
    assert gaps == [
        "hours.halls.east.lunch: the lunch rotation leaves a service uncovered: "
        "11:30–12:30 贷款 无窗口（w1 就餐）",
        "hours.halls.east.lunch: the lunch rotation leaves a service uncovered: "
        "12:30–13:30 提取 无窗口（w2 就餐）",
    ]
    covered = TWO_HALLS.replace('["贷款"]', '["贷款", "提取"]').replace(
        '["提取"]', '["提取", "贷款"]'
    )
    assert [w for w in load(write(tmp_path, covered), {}).warnings if "lunch" in w] == []


def test_check_config_command(tmp_path: Path) -> None:
    """`hallwatch check-config` (a real process) prints each hall's hours and the rotation's
    warnings and exits 1; a clean config exits 0; a refused one 2 with the key."""

    def run(text: str) -> subprocess.CompletedProcess[str]:
        path = write(tmp_path, text)
        cmd = [sys.executable, "-m", "hallwatch.daemon.cli", "check-config", "--config", str(path)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)

    warned = run(TWO_HALLS)
    assert warned.returncode == 1, warned.stderr
    assert "hours.halls.east: 09:00–16:30  lunch: w1 11:30–12:30、w2 12:30–13:30" in warned.stdout
    assert "11:30–12:30 贷款 无窗口（w1 就餐）" in warned.stderr
    clean = run('[hours]\nclose = "16:00"\n')
    assert clean.returncode == 0 and "hours (default): 09:00–16:00" in clean.stdout
    bad = run('[hours]\nclose = "8pm"\n')
    assert bad.returncode == 2 and "hours.close" in bad.stderr
