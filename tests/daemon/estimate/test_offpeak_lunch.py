"""Off-peak guidance and a hall's lunch rotation: figures not measured in the hall (the
centre's history, the typical day) never send people into its lunch-reduced hours; its own
history, which has measured its lunch-time waits, is taken as it is."""

from __future__ import annotations

from datetime import time

from hallwatch.daemon.core.hours import Hours, Lunch
from hallwatch.daemon.estimate.offpeak import WaitTable, hall_guidance, typical_windows

from tests.daemon.estimate.test_offpeak_hours import history
from tests.factories import at

ROTA = (Lunch("w1", time(11, 30), time(12, 30)), Lunch("w2", time(12, 30), time(13, 30)))
LUNCHING = Hours(open=time(9, 0), close=time(17, 0), lunch=ROTA)
EARLY = Hours(open=time(9, 0), close=time(17, 0), lunch=(Lunch("w1", time(10, 30), time(11, 0)),))
NOW = at("2026-11-29T20:00")  # Sunday evening: Monday 2026-11-30 comes


def test_centre_history_skips_the_hours_the_rotation_meets() -> None:
    """The centre's quietest hours are 12:00 and 11:00 (both meet 11:30-13:30), then 15:00: a
    hall with that rotation is sent to 15:00 first; without a rotation, to 12:00."""
    centre = history(
        ("2026-11-23T12:10", 30.0, 3), ("2026-11-23T11:10", 40.0, 3), ("2026-11-23T15:10", 90.0, 3)
    )
    body = hall_guidance(WaitTable(), [centre], NOW, hours=LUNCHING)
    assert body["source"] == "centre"
    assert [s["hour"] for s in body["quiet_slots"]] == [15]
    plain = hall_guidance(WaitTable(), [centre], NOW, hours=Hours())
    assert [s["hour"] for s in plain["quiet_slots"]] == [12, 11, 15]


def test_own_history_is_taken_as_measured() -> None:
    """The hall's own quietest hour on record is 12:00, in its rotation: it has measured it,
    so it is offered."""
    own = history(("2026-11-23T12:10", 30.0, 3), ("2026-11-23T15:10", 90.0, 3))
    body = hall_guidance(own, [], NOW, hours=LUNCHING)
    assert body["source"] == "own" and [s["hour"] for s in body["quiet_slots"]] == [12, 15]


def test_typical_day_has_the_lunch_cut_out() -> None:
    """A rotation 10:30-11:00 cuts the typical 10:00-11:00 to 10:00-10:30, on the API and in
    the hint; 11:30-13:30 meets no typical stretch and changes nothing."""
    assert typical_windows(EARLY) == [(time(10, 0), time(10, 30)), (time(14, 30), time(16, 0))]
    assert typical_windows(LUNCHING) == [(time(10, 0), time(11, 0)), (time(14, 30), time(16, 0))]
    body = hall_guidance(WaitTable(), [], NOW, hours=EARLY)
    assert body["source"] == "typical"
    assert [(s["start"], s["end"]) for s in body["quiet_slots"]][:2] == [
        ("10:00", "10:30"),
        ("14:30", "16:00"),
    ]
    assert "通常 10:00–10:30、14:30–16:00 人较少" in body["hint"]
