"""Tests of hallwatch.daemon.offline.replay: recorded days read back and driven through the core."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hallwatch.daemon.offline.replay import read_day, record_line, replay, summary


def line(topic: str, **payload: Any) -> str:
    return json.dumps({"topic": topic, "payload": payload}, ensure_ascii=False)


def ts(hhmm: str, day: str = "2026-11-26") -> str:
    return f"{day}T{hhmm}:00+08:00"


def write_day(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "2026-11-26.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


T = "hall/h1/ticket"
DAY = [
    line("hall/h1/window/w1", id="w:1", ts=ts("08:30"), state="open", services=["提取"]),
    line("hall/h1/door/east", id="d:1", ts=ts("08:30"), in_total=100, out_total=100),
    line(T, id="t:1", ts=ts("09:00"), type="issued", ticket="A001", service="提取"),
    line(T, id="t:2", ts=ts("09:01"), type="issued", ticket="A002", service="提取"),
    line(T, id="t:2", ts=ts("09:01"), type="issued", ticket="A002", service="提取"),  # dup
    line("hall/h1/door/east", id="d:2", ts=ts("09:05"), in_total=108, out_total=101),
    line(T, id="t:3", ts=ts("09:10"), type="called", ticket="A001", window="w1"),
    line(T, id="t:3", ts=ts("09:10"), type="called", ticket="A001", window="w1"),  # dup
    line(T, id="t:4", ts=ts("09:20"), type="completed", ticket="A001", window="w1"),
    line(T, id="t:5", ts=ts("09:40"), type="called", ticket="A002", window="w1"),
    line("hall/h1/door/east", id="d:3", ts=ts("10:00"), in_total=110, out_total=107),
    line(T, id="t:6", ts=ts("10:05"), type="issued", ticket="A003", service="提取"),
    line(T, id="bad:1", ts="09:00", type="issued", ticket="A9", service="x"),  # bad_ts
    line(T, id="bad:2", ts=ts("10:00"), type="vip", ticket="A9"),  # unknown_type
    line(T, id="bad:3", ts=ts("10:00"), type="issued", service="x"),  # missing_field
    line(T, id="", ts=ts("10:00"), type="cancelled", ticket="A9"),  # bad_id
    line("hall/h1/status", id="s:1", ts=ts("10:00")),  # unknown_topic
    json.dumps({"topic": T, "payload_text": "{not json"}),  # bad_json
    "",
    line("hall/h1/device/tm-01", id="v:1", ts=ts("08:00"), state="offline", kind="display"),
]


def test_read_day_yields_topic_and_payload(tmp_path: Path) -> None:
    """read_day gives (topic, payload bytes) per non-blank line, in file order."""
    messages = list(read_day(write_day(tmp_path, DAY)))
    assert len(messages) == len(DAY) - 1  # the blank line is skipped
    topic, body = messages[2]
    assert topic == T
    assert json.loads(body) == {
        "id": "t:1",
        "ts": ts("09:00"),
        "type": "issued",
        "ticket": "A001",
        "service": "提取",
    }
    assert messages[17] == (T, b"{not json")


def test_read_day_rejects_a_line_that_is_not_a_record(tmp_path: Path) -> None:
    """A line that is not a recorded message stops reading with its file and line number."""
    path = write_day(tmp_path, [DAY[0], "[1, 2, 3]"])
    with pytest.raises(ValueError, match=r"\.jsonl:2:"):
        list(read_day(path))


def test_replay_counts_accepted_duplicates_and_rejections(tmp_path: Path) -> None:
    """Duplicates by id are counted once; rejected lines are counted by reason."""
    result = replay(read_day(write_day(tmp_path, DAY)))
    assert result.accepted == 11
    assert result.duplicates == 2
    assert dict(result.rejected) == {
        "bad_ts": 1,
        "unknown_type": 1,
        "missing_field": 1,
        "bad_id": 1,
        "unknown_topic": 1,
        "bad_json": 1,
    }


def test_summary_figures(tmp_path: Path) -> None:
    """The summary's ticket counts, waits, headcount peak and end figures are those of the day."""
    out = summary(replay(read_day(write_day(tmp_path, DAY))))
    assert out["events"] == {"accepted": 11, "duplicate": 2, "rejected": 6}
    assert out["rejected_by_reason"]["bad_json"] == 1
    assert out["from"] == "2026-11-26T08:00:00+08:00"
    assert out["to"] == "2026-11-26T10:05:00+08:00"
    h1 = out["halls"]["h1"]
    assert h1["business_day"] == "2026-11-26"
    assert h1["tickets"] == {
        "issued": 3,
        "called": 2,
        "completed": 1,
        "no_show": 0,
        "cancelled": 0,
        "transferred": 0,
    }
    waits = h1["wait_s"]
    assert (waits["mean"], waits["max"], waits["over_20min"]) == (1470.0, 2340.0, 1)
    assert waits["p90"] in (600.0, 2340.0)  # two waits: which one is p90 is a convention
    assert h1["peak_headcount"] == 7  # +8 -1 at 09:05
    assert h1["peak_headcount_at"] == "2026-11-26T09:05:00+08:00"
    assert h1["headcount_end"] == 3  # +2 -6 at 10:00
    assert h1["peak_waiting"] == 2
    assert h1["peak_waiting_at"] == "2026-11-26T09:01:00+08:00"
    assert h1["waiting_end"] == 1
    assert h1["windows_open_end"] == 1
    assert h1["devices_offline_end"] == ["tm-01"]


def test_replay_uses_the_given_time_zone(tmp_path: Path) -> None:
    """Replay runs the business day in the given zone: 23:30 UTC is the next day in Shanghai."""
    lines = [
        line(T, id="1", ts="2026-11-26T23:30:00Z", type="issued", ticket="A1", service="s"),
    ]
    path = write_day(tmp_path, lines)
    shanghai = summary(replay(read_day(path)))
    utc = summary(replay(read_day(path), tz="UTC"))
    assert shanghai["halls"]["h1"]["business_day"] == "2026-11-27"
    assert utc["halls"]["h1"]["business_day"] == "2026-11-26"


def test_replay_custom_root(tmp_path: Path) -> None:
    """With another topic root, the default root's lines are unknown topics."""
    lines = [
        line("hq/h1/ticket", id="1", ts=ts("09:00"), type="issued", ticket="A1", service="s"),
        line(T, id="2", ts=ts("09:00"), type="issued", ticket="A2", service="s"),
    ]
    result = replay(read_day(write_day(tmp_path, lines)), root="hq")
    assert result.accepted == 1
    assert dict(result.rejected) == {"unknown_topic": 1}


def test_record_line_round_trips_through_read_day(tmp_path: Path) -> None:
    """record_line writes what read_day reads back: objects as payload, the rest as text."""
    obj = b'{"id": "a", "ts": 1, "type": "cancelled", "ticket": "\xe4\xb8\x80"}'
    recorded = [
        record_line("hall/h1/ticket", obj),
        record_line("hall/h1/ticket", b"[1, 2]"),
        record_line("hall/h1/ticket", b"\xff garbage"),
    ]
    assert json.loads(recorded[0])["payload"]["ticket"] == "一"
    assert "payload_text" in json.loads(recorded[1])
    back = list(read_day(write_day(tmp_path, recorded)))
    assert json.loads(back[0][1]) == json.loads(obj)
    assert back[1] == ("hall/h1/ticket", b"[1, 2]")
    result = replay(iter(back))
    assert result.accepted == 1
    assert dict(result.rejected) == {"not_object": 1, "bad_json": 1}
