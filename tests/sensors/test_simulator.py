"""Tests for the hall simulator: determinism, honest statistics, the contract, the scenarios
(its files and live replay: test_simulator_io.py)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hallwatch.sensors.profiles import PROFILES, Profile, WindowSpec, hm
from hallwatch.sensors.simulator import (
    PRIORITY_RANK,
    Day,
    SimMessage,
    epoch,
    simulate_day,
    summarize,
    write_day,
)

ID = r"[A-Za-z0-9_.-]{1,64}"
TOPIC = re.compile(rf"hall/h1/(ticket|complaint|(window|door|device|system)/({ID}))")
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00")
EVENT_ID = re.compile(r"[A-Za-z0-9_.-]+:\d{8}\d{6}")  # device:YYYYMMDD + sequence


@cache
def day(name: str, seed: int) -> Day:
    return simulate_day(PROFILES[name], seed)


def first_visits(d: Day) -> list[Any]:
    return [t for t in d.truth if t.leg == 0]


def ticket_events(d: Day, kind: str | None = None) -> Iterator[SimMessage]:
    for m in d.messages:
        if m.topic.endswith("/ticket") and (kind is None or m.payload["type"] == kind):
            yield m


def binomial_tolerance(p: float, n: int) -> float:
    return 4.0 * math.sqrt(p * (1.0 - p) / n)


def queue_levels(messages: list[SimMessage]) -> list[tuple[float, int]]:
    """Tickets waiting after each message, as the daemon would count them from the wire."""
    level, out = 0, []
    for m in messages:
        if m.topic.endswith("/ticket"):
            kind = m.payload["type"]
            level += kind in ("issued", "transferred")
            level -= kind in ("called", "cancelled")
            out.append((m.at, level))
    return out


def calling_violations(messages: list[SimMessage], max_gap_s: float = 15.0) -> list[str]:
    """Replay the wire and list every call that breaks the calling rules.

    Rules: only an open window calls; it calls the best waiting ticket it serves (class first,
    then first in line); it pauses or closes only between customers; and it does not sit idle
    longer than `max_gap_s` once it is free and the ticket it calls is waiting.
    """
    windows: dict[str, tuple[str, tuple[str, ...]]] = {}
    waiting: dict[str, tuple[int, int, str, float]] = {}  # ticket -> (rank, order, service, at)
    ranks: dict[str, int] = {}
    serving: dict[str, str] = {}  # window -> ticket at it
    free_since: dict[str, float] = {}
    problems: list[str] = []
    for i, m in enumerate(messages):
        p = m.payload
        if "/window/" in m.topic:
            window = m.topic.rsplit("/", 1)[1]
            windows[window] = (p["state"], tuple(p["services"]))
            free_since[window] = m.at
            if p["state"] != "open" and window in serving:
                problems.append(f"{p['id']}: {window} went {p['state']} while serving")
        if not m.topic.endswith("/ticket"):
            continue
        if p["type"] == "issued":
            ranks[p["ticket"]] = PRIORITY_RANK[p["priority"]]
            waiting[p["ticket"]] = (ranks[p["ticket"]], i, p["service"], m.at)
        elif p["type"] == "transferred":  # keeps its class, joins the back of it
            waiting[p["ticket"]] = (ranks[p["ticket"]], i, p["service"], m.at)
        elif p["type"] == "cancelled":
            waiting.pop(p["ticket"])
        elif p["type"] in ("completed", "no_show"):
            if serving.pop(p["window"], None) != p["ticket"]:
                problems.append(f"{p['id']}: {p['ticket']} was not at {p['window']}")
            free_since[p["window"]] = m.at
        elif p["type"] == "called":
            window = p["window"]
            state, services = windows.get(window, ("closed", ()))
            called = waiting.pop(p["ticket"], None)
            if called is None or state != "open" or called[2] not in services:
                problems.append(f"{p['id']}: {p['ticket']} not callable at {window}")
                continue
            if window in serving:
                problems.append(f"{p['id']}: {window} called while serving")
            serving[window] = p["ticket"]
            if m.at - max(free_since[window], called[3]) > max_gap_s + 0.01:
                problems.append(f"{p['id']}: {window} sat idle before calling {p['ticket']}")
            ahead = [t for t, w in waiting.items() if w[2] in services and w[:2] < called[:2]]
            if ahead:
                problems.append(f"{p['id']}: called {p['ticket']} before {ahead[0]}")
    return problems


def test_same_seed_gives_identical_day(tmp_path: Path) -> None:
    """The same profile and seed reproduce the day byte for byte, truth included."""
    a, b = simulate_day(PROFILES["outage"], 11), simulate_day(PROFILES["outage"], 11)
    assert a.messages == b.messages and a.truth == b.truth
    write_day(a, tmp_path / "a.jsonl")
    write_day(b, tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.truth.jsonl").read_bytes() == (tmp_path / "b.truth.jsonl").read_bytes()


def test_different_seed_gives_different_day() -> None:
    """Another seed gives other arrivals and other messages."""
    a, b = day("normal", 1), day("normal", 2)
    assert [t.issued_at for t in a.truth] != [t.issued_at for t in b.truth]
    assert a.messages != b.messages


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_arrival_count_matches_profile(name: str) -> None:
    """Pooled over seeds, first tickets issued are within 4 Poisson sigmas of the expected count."""
    seeds = range(5)
    expected = PROFILES[name].expected_arrivals * len(seeds)
    got = sum(len(first_visits(day(name, s))) for s in seeds)
    assert abs(got - expected) <= 4 * math.sqrt(expected)
    assert abs(got - expected) <= 0.15 * expected
    issued = sum(1 for s in seeds for _ in ticket_events(day(name, s), "issued"))
    assert issued == got  # the wire agrees with the truth


def test_arrivals_follow_the_hourly_shape() -> None:
    """Each opening hour gets its weighted share of the arrivals (thinning is right)."""
    p = PROFILES["peak"]
    counts: Counter[int] = Counter()
    seeds = range(5)
    for s in seeds:
        for t in first_visits(day("peak", s)):
            counts[int((t.issued_at - epoch(p, p.open_at)) // 3600)] += 1
    total = sum(p.hourly_weights)
    for hour, weight in enumerate(p.hourly_weights):
        expected = p.expected_arrivals * len(seeds) * weight / total
        assert abs(counts[hour] - expected) <= 4 * math.sqrt(expected), hour
    assert set(counts) == set(range(p.opening_hours))


def test_priority_and_service_shares_match_profile() -> None:
    """Green, appointment and service shares of first tickets match the profile."""
    p = PROFILES["normal"]
    visits = [t for s in range(10) for t in first_visits(day("normal", s))]
    n = len(visits)
    priorities = Counter(t.priority for t in visits)
    for share, name in ((p.green_share, "green"), (p.appointment_share, "appointment")):
        assert abs(priorities[name] / n - share) <= binomial_tolerance(share, n), name
    services = Counter(t.service for t in visits)
    for spec in p.services:
        assert abs(services[spec.name] / n - spec.share) <= binomial_tolerance(spec.share, n)


def test_service_time_means_match_profile() -> None:
    """Per service, mean(completed - called) is within 15% (and 4 standard errors) of the knob."""
    p = PROFILES["normal"]
    durations: dict[str, list[float]] = defaultdict(list)
    for s in range(6):
        for t in day("normal", s).truth:
            if t.outcome == "completed":
                assert t.completed_at is not None and t.called_at is not None
                durations[t.service].append(t.completed_at - t.called_at)
    for spec in p.services:
        got = durations[spec.name]
        assert len(got) > 100
        mean = sum(got) / len(got)
        sd = math.sqrt(sum((x - mean) ** 2 for x in got) / (len(got) - 1))
        assert abs(mean - spec.mean_s) <= 0.15 * spec.mean_s, spec.name
        # Also within 4 standard errors, which catches a log-normal parametrised by mu.
        assert abs(mean - spec.mean_s) <= 4 * sd / math.sqrt(len(got)), spec.name


@pytest.mark.parametrize("name", ["normal", "peak", "outage"])
def test_calling_order_obeys_contract(name: str) -> None:
    """Every call takes the best waiting ticket the window serves: class first, then FIFO."""
    d = day(name, 3)
    assert calling_violations(d.messages) == []
    # Not vacuous: calls happened with a queue, and across classes.
    called = {m.payload["ticket"] for m in ticket_events(d, "called")}
    assert {t.priority for t in d.truth if t.ticket in called} == set(PRIORITY_RANK)
    assert max(level for _, level in queue_levels(d.messages)) > 3


def test_calling_checker_catches_violations() -> None:
    """The rule checker flags wrong class order, pausing mid-service and idling windows."""

    def msg(topic: str, at: float = 0.0, **payload: Any) -> SimMessage:
        return SimMessage(at, f"hall/h1/{topic}", {"id": f"x:{at}", "ts": "", **payload})

    window = msg("window/w01", state="open", services=["提取"], emergency=False)
    green = msg("ticket", type="issued", ticket="A001", service="提取", priority="green")
    normal = msg("ticket", type="issued", ticket="A002", service="提取", priority="normal")
    call_green = msg("ticket", type="called", ticket="A001", window="w01")
    assert not calling_violations([window, green, normal, call_green])
    call = msg("ticket", type="called", ticket="A002", window="w01")
    assert calling_violations([window, green, normal, call])
    assert calling_violations([window, normal, green, call])
    paused = msg("window/w01", state="paused", services=["提取"], emergency=False)
    assert calling_violations([window, green, call_green, paused])
    late = msg("ticket", at=60.0, type="called", ticket="A001", window="w01")
    assert calling_violations([window, green, late])


REQUIRED: dict[str, dict[str, Any]] = {
    "issued": {"ticket": str, "service": str, "priority": ("normal", "green", "appointment")},
    "called": {"ticket": str, "window": str},
    "completed": {"ticket": str, "window": str},
    "no_show": {"ticket": str, "window": str},
    "cancelled": {"ticket": str},
    "transferred": {"ticket": str, "service": str},
    "window": {"state": ("open", "paused", "closed"), "services": list, "emergency": bool},
    "door": {"in_total": int, "out_total": int},
    "device": {
        "state": ("online", "offline"),
        "kind": ("ticket_machine", "door_counter", "window_terminal", "display", "other"),
    },
    "system": {"state": ("up", "degraded", "down")},
    "complaint": {
        "complaint_id": str,
        "channel": ("visit", "phone", "letter", "online"),
        "severity": ("normal", "serious"),
        "summary": str,
        "received_by": str,
    },
}


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_messages_follow_the_contract(name: str) -> None:
    """Topics, ids, timestamps and required fields are exactly what the contract specifies."""
    d = day(name, 1)
    ids: set[str] = set()
    assert [m.at for m in d.messages] == sorted(m.at for m in d.messages)
    for m in d.messages:
        match = TOPIC.fullmatch(m.topic)
        assert match, m.topic
        p = m.payload
        assert EVENT_ID.fullmatch(p["id"]) and len(p["id"]) <= 128 and p["id"] not in ids
        ids.add(p["id"])
        assert TS.fullmatch(p["ts"]), p["ts"]
        assert datetime.fromisoformat(p["ts"]).timestamp() == pytest.approx(m.at, abs=1e-6)
        kind = p["type"] if match[1] == "ticket" else match[2] or match[1]
        for key, rule in REQUIRED[kind].items():
            value = p[key]
            if isinstance(rule, tuple):
                assert value in rule, (key, value)
            else:
                assert isinstance(value, rule), (key, value)
        if kind == "door":
            assert p["in_total"] >= 0 and p["out_total"] >= 0
        if kind == "window":
            assert p["services"] and all(s in PROFILES[name].service_names for s in p["services"])
        if kind == "complaint" and "phone" in p:
            assert re.fullmatch(r"1\d{10}", p["phone"])
        assert m.retain == (kind == "device")  # device status is retained, nothing else
        if kind == "device":
            assert p["id"].startswith(f"{match[3]}:")
    json.dumps([m.payload for m in d.messages])  # plain JSON, nothing exotic


def test_messages_pass_the_daemons_parser() -> None:
    """The daemon's own contract parser accepts every simulated message with the same time."""
    parse_mod = pytest.importorskip("hallwatch.sensors.parse")
    from hallwatch.sensors.events import Rejection

    for name in sorted(PROFILES):
        for m in day(name, 1).messages:
            event = parse_mod.parse(m.topic, json.dumps(m.payload).encode())
            assert not isinstance(event, Rejection), (m, event)
            assert event.ts == pytest.approx(m.at, abs=1e-3)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_ticket_lifecycle_is_consistent(name: str) -> None:
    """Tickets are issued 09:00-17:00, every visit ends, abandoners end cancelled or no_show."""
    d = day(name, 2)
    p = d.profile
    for m in ticket_events(d, "issued"):
        assert epoch(p, p.open_at) <= m.at < epoch(p, p.close_at)
    for t in d.truth:
        assert t.outcome != "open"
        assert (t.outcome in ("cancelled", "no_show")) == t.abandoned
        if t.outcome == "cancelled":
            assert t.called_at is None and t.left_at is not None
        else:
            assert t.called_at is not None and t.window is not None and t.issued_at <= t.called_at
        if t.outcome == "no_show":
            assert t.left_at is not None and t.left_at < t.called_at  # type: ignore[operator]
    counts = Counter(m.payload["type"] for m in ticket_events(d))
    outcomes = Counter(t.outcome for t in d.truth)
    assert counts["called"] == outcomes["completed"] + outcomes["no_show"]
    assert counts["transferred"] == sum(t.leg > 0 for t in d.truth)
    last_event = max(m.at for m in ticket_events(d))
    closes = [
        m
        for m in d.messages
        if "/window/" in m.topic and m.payload["state"] == "closed" and not m.payload["emergency"]
    ]  # the emergency window may stand down mid-day
    assert len(closes) == len(p.windows)
    assert min(m.at for m in closes) >= max(last_event, epoch(p, p.close_at))


def test_transfer_follows_completion_with_same_priority() -> None:
    """A transfer comes right after that ticket's completion and keeps its priority class."""
    d = day("peak", 1)
    last: dict[str, str] = {}
    for m in ticket_events(d):
        if m.payload["type"] == "transferred":
            assert last[m.payload["ticket"]] == "completed"
        last[m.payload["ticket"]] = m.payload["type"]
    legs = defaultdict(list)
    for t in d.truth:
        legs[t.ticket].append(t)
    moved = [v for v in legs.values() if len(v) == 2]
    assert moved
    assert all(a.priority == b.priority and a.service != b.service for a, b in moved)


def test_peak_crosses_the_plans_threshold() -> None:
    """The peak day has more than 20 waiting and a 20-minute wait, and staffs the extra window."""
    d = day("peak", 1)
    e = d.profile.emergency
    assert e is not None
    levels = queue_levels(d.messages)
    assert max(level for _, level in levels) > 20
    assert summarize(d).max_wait_s > 20 * 60
    opened = [
        m
        for m in d.messages
        if m.topic.endswith(f"/window/{e.window}") and m.payload["state"] == "open"
    ]
    assert opened and all(m.payload["emergency"] for m in opened)
    first = opened[0].at
    crossed = min(
        at
        for at, level in levels
        if level >= e.open_at_waiting and at >= epoch(d.profile, e.active_from)
    )
    assert first == pytest.approx(crossed + e.staffing_delay_s, abs=0.01)
    assert any(m.payload.get("window") == e.window for m in ticket_events(d, "called"))
    quiet = max(level for _, level in queue_levels(day("quiet", 1).messages))
    assert quiet < 20


def test_outage_day_has_45_minutes_down_and_a_device_offline() -> None:
    """The core system is down exactly 45 minutes; the door counter is offline and silent."""
    d = day("outage", 1)
    states = [(m.at, m.payload["state"]) for m in d.messages if "/system/core" in m.topic]
    down = [i for i, (_, s) in enumerate(states) if s == "down"]
    assert len(down) == 1 and states[down[0] + 1][1] == "up"
    assert states[down[0] + 1][0] - states[down[0]][0] == pytest.approx(45 * 60)
    device = [m for m in d.messages if m.topic.endswith("/device/dc-d2")]
    off = [i for i, m in enumerate(device) if m.payload["state"] == "offline"]
    assert len(off) == 1
    gap = device[off[0] + 1].at - device[off[0]].at
    assert gap == pytest.approx(20 * 60)
    silent = [
        m
        for m in d.messages
        if "dc-d2:" in m.payload["id"] and device[off[0]].at < m.at < device[off[0] + 1].at
    ]
    assert silent == []
    beats = [
        b.at - a.at
        for a, b in itertools.pairwise(device)
        if a.payload["state"] == b.payload["state"] == "online"
    ]
    assert max(beats) <= d.profile.heartbeat_s + 1e-6
    for other in ("normal", "peak", "quiet"):
        seen = {m.payload.get("state") for m in day(other, 1).messages}
        assert not seen & {"down", "offline"}


def test_system_outage_slows_service() -> None:
    """Services started while the core system is down take `outage_service_factor` longer."""
    p = PROFILES["outage"]
    assert p.system_outage is not None
    start = epoch(p, p.system_outage.start)
    end = start + p.system_outage.duration_s
    means = {spec.name: spec.mean_s for spec in p.services}
    inside: list[float] = []
    outside: list[float] = []
    for s in range(4):
        for t in day("outage", s).truth:
            if t.outcome == "completed":
                assert t.called_at is not None and t.completed_at is not None
                ratio = (t.completed_at - t.called_at) / means[t.service]
                (inside if start <= t.called_at < end else outside).append(ratio)
    assert len(inside) > 50
    assert abs(sum(inside) / len(inside) - p.outage_service_factor) < 0.2
    assert abs(sum(outside) / len(outside) - 1.0) < 0.1


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_door_totals_only_drop_at_the_reset(name: str) -> None:
    """Door totals never decrease, except once to zero at the profile's counter reset."""
    d = day(name, 1)
    p = d.profile
    drops = []
    last: dict[str, tuple[int, int]] = {}
    for m in d.messages:
        if "/door/" in m.topic:
            door = m.topic.rsplit("/", 1)[1]
            totals = (m.payload["in_total"], m.payload["out_total"])
            before = last.get(door, (0, 0))
            if totals[0] < before[0] or totals[1] < before[1]:
                drops.append((door, m.at, totals))
            last[door] = totals
    expected = (
        []
        if p.counter_reset is None
        else [(p.counter_reset[0], epoch(p, p.counter_reset[1]), (0, 0))]
    )
    assert drops == expected


def test_door_counts_are_honest() -> None:
    """Doors count customers plus companions minus ~3% misses, in and out alike."""
    p = PROFILES["normal"]
    counted = people = 0
    for s in range(5):
        d = day("normal", s)
        final = {m.topic: m.payload for m in d.messages if "/door/" in m.topic}
        counted += sum(v["in_total"] for v in final.values())
        outs = sum(v["out_total"] for v in final.values())
        assert abs(outs - sum(v["in_total"] for v in final.values())) <= 15
        people += len({t.ticket for t in first_visits(d)})
    expected = people * (1 + p.companion_share) * (1 - p.miss_rate)
    assert abs(counted - expected) <= 4 * math.sqrt(people)


def test_lunch_rotation_keeps_every_service_open() -> None:
    """Windows pause in turns over lunch, and every service always has an open window."""
    d = day("normal", 1)
    states: dict[str, tuple[str, tuple[str, ...]]] = {}
    paused = set()
    for m in d.messages:
        if "/window/" not in m.topic:
            continue
        states[m.topic.rsplit("/", 1)[1]] = (m.payload["state"], tuple(m.payload["services"]))
        if m.payload["state"] == "paused":
            paused.add(m.topic.rsplit("/", 1)[1])
            assert hm("12:00") <= m.at - epoch(d.profile, 0) < hm("13:30")
        if hm("09:00") <= m.at - epoch(d.profile, 0) < hm("17:00"):
            serving = {s for state, svc in states.values() if state == "open" for s in svc}
            assert serving == set(d.profile.service_names)
    assert paused == {w.window for w in d.profile.windows if w.lunch}


def test_profile_overrides_and_validation() -> None:
    """`dataclasses.replace` overrides work, and bad knobs fail naming the knob."""
    small = dataclasses.replace(PROFILES["quiet"], expected_arrivals=30.0, hall="h9")
    d = simulate_day(small, 4, root="test")
    assert 10 <= len(first_visits(d)) <= 60
    assert all(m.topic.startswith("test/h9/") for m in d.messages)
    with pytest.raises(ValueError, match="hourly_weights"):
        dataclasses.replace(PROFILES["normal"], hourly_weights=(1.0, 2.0))
    with pytest.raises(ValueError, match="no regular window serves"):
        dataclasses.replace(PROFILES["normal"], windows=(WindowSpec("w01", ("提取",)),))
    with pytest.raises(ValueError, match="green_share"):
        dataclasses.replace(PROFILES["normal"], green_share=1.5)
    assert isinstance(PROFILES["peak"], Profile)


def test_event_ids_stay_unique_across_days() -> None:
    """Two days of the same hall share no event id (the store would drop the second day)."""
    first = simulate_day(PROFILES["quiet"], seed=1)
    later = simulate_day(dataclasses.replace(PROFILES["quiet"], date=date(2026, 11, 30)), 1)
    assert not {m.payload["id"] for m in first.messages} & {m.payload["id"] for m in later.messages}
