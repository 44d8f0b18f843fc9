"""One voice for an instance that joins an episode midway: the keys of repeats, escalations and
the resolution come from what both instances agree on (the shared episode start and the event
time), not from how many transitions each one happened to see (#18)."""

from __future__ import annotations

from dataclasses import replace

from hallwatch.alerts.rules import RuleEngine
from hallwatch.alerts.view import HallView, Transition
from hallwatch.daemon.config.alerts_reader import read_alerts

from tests.alerts.pair import pair, started, stored_keys
from tests.alerts.test_alert_receiver import T0

RULES = {
    "queue_peak": {
        "for_s": 1,
        "clear_for_s": 2,
        "repeat_s": 5,
        "relapse_s": 0,
        "escalate_after_s": 22,
    }
}
SETTINGS = read_alerts(
    {
        "wecom": {"url": "http://127.0.0.1:9/send", "robots": {"hall": {"key": "robot-hall"}}},
        "roles": {"supervisor": {"wecom": ["hall"]}, "director": {"wecom": ["hall"]}},
        **RULES,
    },
    {},
)


def crowd(t: float, n: int) -> HallView:
    return HallView(hall="h1", now=T0 + t, headcount=n)


def keys(ts: list[Transition]) -> list[str]:
    return [f"{t.alert_id}/{t.ordinal}-{t.state}" for t in ts]


def day(t: float) -> int:
    """The crowd at t s: a peak from 0 to 40 s, quiet until 50 s, a second peak to 80 s."""
    return 25 if t < 40 or 50 <= t < 80 else 5


def test_a_late_joiner_numbers_repeats_escalation_and_end_as_the_first() -> None:
    """Engine a ticks every second from 0; b starts at 17.5 s on the half second and takes a's
    start (as the shared store gives it): every key b makes is one a made (b's resolution too;
    with per-instance counting b's were 1-firing, 2-escalated, 3-repeat ... not a's)."""
    a, b = RuleEngine(SETTINGS.rules), RuleEngine(SETTINGS.rules)
    made_a: list[Transition] = []
    made_b: list[Transition] = []
    for i in range(0, 48):  # the first peak and its end
        made_a += a.evaluate(crowd(i, day(i)))
        if i >= 17:
            for t in b.evaluate(crowd(i + 0.5, day(i + 0.5))):
                if t.state == "firing":  # the shared store's start (alerts/claims.py)
                    e = b.rebase(t.hall, t.alert, t.subject, made_a[0].started_at)
                    assert e is not None
                    t = replace(t, alert_id=e.alert_id, started_at=e.since)
                made_b.append(t)
    first = [t for t in made_a if t.alert_id == made_a[0].alert_id]
    assert [t.state for t in first].count("repeat") >= 4
    assert "escalated" in [t.state for t in first]
    joined = [k for k in keys(made_b) if k.startswith(made_a[0].alert_id)]
    assert joined and joined[-1].endswith("-resolved")
    assert set(joined) - set(keys(made_a)) == set(), (joined, keys(made_a))


def test_repeats_keep_their_grid_across_a_restart() -> None:
    """A single daemon restored from its snapshot mid-episode makes the keys it would have made
    running on (the restore path of one instance with SQLite)."""
    ran = RuleEngine(SETTINGS.rules)
    straight = [t for i in range(60) for t in ran.evaluate(crowd(i, day(i)))]
    before = RuleEngine(SETTINGS.rules)
    restarted = [t for i in range(13) for t in before.evaluate(crowd(i, day(i)))]
    after = RuleEngine(SETTINGS.rules)
    after.restore(before.snapshot())
    restarted += [t for i in range(13, 60) for t in after.evaluate(crowd(i, day(i)))]
    assert keys(restarted) == keys(straight)


async def test_a_restarted_instance_neither_repeats_nor_refires_what_its_peer_ended(
    pg_url: str,
) -> None:
    """a runs the whole day; b runs the first 12 s, is 'killed' (its state stays as saved),
    and comes back at 60 s, in the second peak, still holding the first one as firing: b
    stores no notification a did not (no stale repeat or escalation, no new alert id for the
    crowd it still sees), and each episode is resolved once."""
    async with pair(pg_url, SETTINGS) as (a, b):
        made_b: list[Transition] = []
        for i in range(90):
            await a.evaluate([crowd(i, day(i))])
            if i < 12 or i >= 60:
                made_b += await b.evaluate([crowd(i + 0.5, day(i + 0.5))])
            if i == 12:  # kill -9 and start again: the engine as its last save left it
                b = await started(SETTINGS, b.outbox)
        rows = await stored_keys(a.outbox)
    states = [k.split("/")[1] for k in rows]
    ids = sorted({k.split("/")[0] for k in rows})
    assert len(ids) == 2, ids
    assert states.count("1-firing") == 2 and states.count("1-resolved") == 2, rows
    assert len(rows) == len(set(rows))
    late = keys([t for t in made_b if t.at > T0 + 50])
    assert late == [f"{ids[0]}/1-resolved"], f"b's own after its restart: {late}"


async def test_an_instance_behind_its_peer_does_not_fire_a_peak_the_peer_ended(
    pg_url: str,
) -> None:
    """b sees the hall 9 s late (a backlog after a restart): when a has resolved the first
    peak b still sees the crowd; b neither repeats it nor fires it again under a new alert id,
    and ends it when it sees the end: one alert id per peak, each fired and resolved once."""
    async with pair(pg_url, SETTINGS) as (a, b):
        for i in range(100):
            await a.evaluate([crowd(i, day(i))])
            await b.evaluate([crowd(i + 0.5, day(i - 9))])
        rows = await stored_keys(a.outbox)
    ids = sorted({k.split("/")[0] for k in rows})
    states = [k.split("/")[1] for k in rows]
    assert len(ids) == 2, ids
    assert states.count("1-firing") == 2 and states.count("1-resolved") == 2, rows


async def test_an_instance_far_behind_takes_the_ended_peak_it_sees_not_the_open_one(
    pg_url: str,
) -> None:
    """b's views are 55 s behind a's in event time (`last_event_at`, a long backlog): when b
    sees the first peak, a has ended it and fired the second. b takes the ended first one
    (quiet), not the open second one (whose end b would otherwise announce at the first's
    end), and later the ended second one: b stores nothing a did not; one id per peak."""
    async with pair(pg_url, SETTINGS) as (a, b):
        made_b: list[Transition] = []
        for i in range(140):
            await a.evaluate([replace(crowd(i, day(i)), last_event_at=T0 + i)])
            late = i + 0.5 - 55
            seen = crowd(i + 0.5, day(late) if late >= 0 else 5)  # before the day: nobody
            made_b += await b.evaluate([replace(seen, last_event_at=T0 + late)])
        rows = await stored_keys(a.outbox)
    ids = sorted({k.split("/")[0] for k in rows})
    states = [k.split("/")[1] for k in rows]
    assert len(ids) == 2, ids
    assert states.count("1-firing") == 2 and states.count("1-resolved") == 2, rows
    assert [t.state for t in made_b] == ["resolved", "resolved"], keys(made_b)
    assert keys(made_b) == [f"{ids[0]}/1-resolved", f"{ids[1]}/1-resolved"]


async def test_a_peak_pending_at_a_kill_is_not_fired_anew_after_the_peer_ended_it(
    pg_url: str,
) -> None:
    """b sees the crowd begin (pending), is killed before it fires, and restarts after a has
    fired and ended the peak, with a backlog that still shows the crowd (no event time known):
    b's restored pending episode fires into a's ended one, quiet; one alert id."""
    async with pair(pg_url, SETTINGS) as (a, b):
        assert await b.evaluate([crowd(0.3, 25)]) == []  # pending, saved; then kill -9
        for i in range(1, 48):
            await a.evaluate([crowd(i, day(i))])
        b = await started(SETTINGS, b.outbox)
        made_b = [t for i in range(48, 56) for t in await b.evaluate([crowd(i + 0.5, 30)])]
        made_b += [t for i in range(56, 60) for t in await b.evaluate([crowd(i + 0.5, 5)])]
        rows = await stored_keys(a.outbox)
    assert len({k.split("/")[0] for k in rows}) == 1, rows
    assert keys(made_b) == [f"{rows[0].split('/')[0]}/1-resolved"]
