"""Tests of sensors.scenarios: families of generated halls, deterministic, varied as claimed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from hallwatch.sensors.profiles import hm
from hallwatch.sensors.scenarios import (
    FAMILIES,
    CountingHall,
    Scenario,
    hall_profile,
    scenario_day,
)
from hallwatch.sensors.sim_hall import Hall
from hallwatch.sensors.simulator import simulate_day, summarize
from hypothesis import given, settings
from hypothesis import strategies as st

SEEDS = range(1, 61)
SEEDS_FILE = Path(__file__).parents[1] / "harness" / "estimate_seeds.json"


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(FAMILIES)), st.integers(0, 10**6))
def test_a_hall_is_a_function_of_family_and_seed(family: str, seed: int) -> None:
    """The same (family, seed) draws the same hall; every service has a window, 3-14 windows,
    shares summing to 1, pauses inside opening hours (a valid Profile)."""
    a, b = hall_profile(family, seed), hall_profile(family, seed)
    assert a == b
    p = a.profile
    assert 3 <= len(p.windows) <= 14
    served = {s for w in p.windows for s in w.services}
    assert served == set(p.service_names)
    assert abs(sum(s.share for s in p.services) - 1.0) < 1e-9
    assert all(120 <= s.mean_s <= 900 and 0.3 <= s.sigma <= 0.9 for s in p.services)


def test_a_day_is_the_same_bytes_for_the_same_seed_and_another_day_differs() -> None:
    """Day d of a hall is deterministic; day d+1 of the same hall is another day."""

    def dump(day: int) -> str:
        return json.dumps([(m.topic, m.payload) for m in scenario_day("green", 7, day).messages])

    assert dump(0) == dump(0)
    assert dump(0) != dump(-1)


def test_families_vary_what_they_claim() -> None:
    """Over 60 halls of `mixed`: 3 and 14 windows both occur, specialists and generalists,
    lunch turns and one-off pauses, one- and two-peak curves, green shares from under 5 % to
    over 20 %, an emergency window, door counters that miss and double count."""
    halls = [hall_profile("mixed", s) for s in SEEDS]
    sizes = {len(h.profile.windows) for h in halls}
    assert min(sizes) <= 4 and max(sizes) >= 13
    widths = [len(w.services) for h in halls for w in h.profile.windows]
    assert 1 in widths and max(widths) >= 4
    lunch = [w.lunch for h in halls for w in h.profile.windows if w.lunch]
    assert any(a >= hm("11:30") and b - a in (1800, 2700, 3600) for a, b in lunch)
    assert any(a < hm("11:00") or a > hm("14:30") for a, _ in lunch)  # a meeting, not lunch

    def afternoon(h: Scenario) -> float:
        w = h.profile.hourly_weights
        return sum(w[5:]) / sum(w)

    one = [afternoon(h) for h in halls if h.peaks == 1]
    two = [afternoon(h) for h in halls if h.peaks == 2]
    assert one and two and sum(two) / len(two) > sum(one) / len(one) + 0.05
    greens = [h.profile.green_share for h in halls]
    assert min(greens) < 0.05 and max(greens) > 0.2
    assert any(h.profile.emergency for h in halls) and not all(h.profile.emergency for h in halls)
    assert all(h.profile.miss_rate >= 0 for h in halls)
    assert max(h.double_rate for h in halls) > 0.03


def test_the_green_family_is_green_and_the_surge_opens_its_emergency_window() -> None:
    """`green` halls draw 15-35 % green-channel customers and their days show it; a `surge`
    hall opens the emergency window mid-peak."""
    assert all(0.15 <= hall_profile("green", s).profile.green_share <= 0.35 for s in SEEDS)
    day = summarize(scenario_day("green", 3))
    assert day.green_share > 0.12
    opened = [summarize(scenario_day("surge", s)).emergency_opened for s in (1, 2, 3)]
    assert any(opened)


def test_double_counting_counters_count_more_than_the_crossings() -> None:
    """The same day with counters that count half the crossings twice totals about 1.5 times
    the people in of counters that never do (and no more with a double rate of 0)."""

    class Twice(CountingHall):
        double_rate = 0.5

    profile = dataclasses.replace(hall_profile("weekday", 1).profile, miss_rate=0.0)

    def total_in(hall_class: type[Hall]) -> int:
        day = simulate_day(profile, 1, hall_class=hall_class)
        last: dict[str, int] = {}
        for m in day.messages:
            if "/door/" in m.topic:
                last[m.topic] = m.payload["in_total"]
        return sum(last.values())

    plain, twice = total_in(Hall), total_in(Twice)
    assert total_in(CountingHall) == plain
    assert 1.4 * plain < twice < 1.6 * plain


def test_repair_halls_have_another_outage_each_day_and_outage_halls_the_same() -> None:
    """`repair` days of one hall have outages of their own (15-120 minutes, at other times);
    an `outage` hall's is 45 minutes at the same time every day."""

    def outage(family: str, day: int) -> tuple[float, float]:
        msgs = [m for m in scenario_day(family, 3, day).messages if "/system/" in m.topic]
        down = next(m.at for m in msgs if m.payload["state"] == "down")
        up = next(m.at for m in msgs if m.payload["state"] == "up" and m.at > down)
        return down % 86400, up - down

    repair = [outage("repair", d) for d in (-2, -1, 0)]
    assert len({r[0] for r in repair}) == 3 and len({r[1] for r in repair}) == 3
    assert all(15 * 60 <= r[1] <= 120 * 60 for r in repair)
    same = [outage("outage", d) for d in (-1, 0)]
    assert same[0] == same[1] and same[0][1] == 45 * 60


def test_blend_is_mixed_drawn_again_for_development() -> None:
    """`blend` draws from `mixed`'s ranges, but its halls are others (development's stand-in
    for the held-out family)."""
    assert dataclasses.replace(FAMILIES["blend"], name="mixed") == FAMILIES["mixed"]
    assert hall_profile("blend", 1).profile.services != hall_profile("mixed", 1).profile.services


def test_calm_is_mixed_in_light_halls_for_development() -> None:
    """`calm` draws from `mixed`'s ranges but loads its halls' peak hour to 0.3-0.65 of their
    windows (development's stand-in for a quiet batch of the held-out family): each hall's
    peak hour, recovered from its profile, is within that, and its halls are others."""
    mixed = FAMILIES["mixed"]
    assert dataclasses.replace(FAMILIES["calm"], name="mixed", utilisation=(0.4, 1.15)) == mixed
    for seed in range(1, 13):
        p = hall_profile("calm", seed).profile
        mean_s = sum(s.share * s.mean_s for s in p.services)
        w = p.hourly_weights
        peak = p.expected_arrivals * max(w) / sum(w)
        assert 0.3 - 1e-9 <= peak * (mean_s + 10.0) / (len(p.windows) * 3600.0) <= 0.65 + 1e-9
    assert hall_profile("calm", 1).profile.services != hall_profile("blend", 1).profile.services


def test_calm_is_in_development_only() -> None:
    """The seeds file develops on `calm` and leaves the held-out families as they were fixed."""
    spec = json.loads(SEEDS_FILE.read_text(encoding="utf-8"))
    assert "calm" in spec["development"]["families"]
    assert spec["held_out"]["families"] == [
        "weekday", "surge", "outage", "quiet", "green", "mixed"
    ]  # fmt: skip
