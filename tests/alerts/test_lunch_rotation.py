"""The lunch rotation as a check at run time (issue 15, 午间轮班): during a rostered slot of the
hall's rotation ([hours]), a service left with people waiting and no open window is the
service_uncovered alert whose first action names the rotation; per-hall hours gate the alerts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hallwatch.alerts.messages import Names, sms_text, wecom_markdown
from hallwatch.alerts.rules import RuleEngine
from hallwatch.alerts.view import HallView, Transition
from hallwatch.daemon.config import settings as config

TZ = ZoneInfo("Asia/Shanghai")
MIN = 60.0
NAMES = Names("东区大厅", {"loan": "贷款"})
CONFIG = """
[hours]
lunch = [{window = "w1", from = "11:30", to = "12:30"}]
[hours.halls.east]
close = "16:30"
[hours.halls.west]
lunch = []
"""


def at(hhmm: str) -> float:
    h, m = hhmm.split(":")
    return datetime(2026, 11, 26, int(h), int(m), tzinfo=TZ).timestamp()  # a Thursday


def uncovered(hall: str, start: float, t: float) -> HallView:
    """Loan customers waiting since `start`, no open window serving loan."""
    return HallView(
        hall=hall,
        now=start + t,
        headcount=6,
        est_wait_s_by_service={"loan": None},
        waiting_by_service={"loan": 4},
        endured_s_by_service={"loan": t},
        uncovered_since={"loan": start},
        windows_open=2,
    )


def fired(e: RuleEngine, hall: str, start: float) -> list[Transition]:
    out = [x for t in range(0, 12) for x in e.evaluate(uncovered(hall, start, t * MIN))]
    return [x for x in out if x.alert == "service_uncovered" and x.state == "firing"]


def engine(tmp_path: Path) -> RuleEngine:
    path = tmp_path / "hallwatch.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return RuleEngine(config.load(path, {}).alerts.rules)


def test_uncovered_in_a_lunch_slot_names_the_rotation(tmp_path: Path) -> None:
    """east's loan left uncovered from 11:32, inside w1's slot 11:30-12:30: the first action is
    the rotation, naming the slot; the SMS keeps the call to open a window."""
    (x,) = fired(engine(tmp_path), "east", at("11:32"))
    assert x.figures.lunch == ("w1 11:30–12:30",)
    text = wecom_markdown(x, NAMES)
    first = (
        "1. 午间轮班：请安排 **贷款** 窗口轮流就餐，保持服务不断档（本时段就餐：w1 11:30–12:30）"
    )
    assert first in text
    assert "2. 立即为 **贷款** 开放窗口" in text
    assert "请立即为贷款开窗口" in sms_text(x, NAMES)


def test_outside_a_slot_or_without_a_rotation_the_action_is_to_open_a_window(
    tmp_path: Path,
) -> None:
    """The same gap at 14:00 (no slot under way) or in west (no rotation) asks first to open a
    window, with the standing rule on the rotation, and names no slot."""
    e = engine(tmp_path)
    for hall, start in (("east", at("14:00")), ("west", at("11:32"))):
        (x,) = fired(e, hall, start)
        assert x.figures.lunch == ()
        text = wecom_markdown(x, NAMES)
        assert "1. 立即为 **贷款** 开放窗口" in text and "本时段就餐" not in text


def test_alerts_follow_each_hall_closing(tmp_path: Path) -> None:
    """A loan queue uncovered from 16:25: west (open until 17:00) alerts at 16:35, east (closing
    16:30) does not: its hours are over."""
    e = engine(tmp_path)
    assert fired(e, "west", at("16:25")) != []
    assert fired(e, "east", at("16:25")) == []
