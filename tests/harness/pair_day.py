"""A simulated peak day of several halls for the HA pair (tests/alerts/test_pair_five_halls.py):
the plan the sensors publish, the day's truth to compare the daemons with, the outbox and the
receiver's tally, and a timeline of what happened when.

Time: the simulator's day (sensors/simulator.py) is played SPEED times faster than real time,
each event stamped with the moment it is due (as tests/harness/faultload_traffic.py does), so
the daemons compute from event time as they would live, only faster. Counts (headcount, tickets
waiting, windows open, tickets issued and served) do not depend on the pace; waits do, and the
alert rules that read them are set in wall seconds. The halls' and the alerts' time zone is one
where it is now about noon (an `Etc/GMT` zone), so a run never crosses a business day's end.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import psycopg.sql
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.offline.replay import unique_events
from hallwatch.daemon.web.server import state_summary
from hallwatch.sensors.events import Rejection
from hallwatch.sensors.profiles import PROFILES
from hallwatch.sensors.sim_day import Day, TicketTruth
from hallwatch.sensors.simulator import simulate_day

from tests.harness.alert_fakes import FakeWecom
from tests.harness.faultload_traffic import Planned

SPEED = 1000.0  # the day's 8.5 hours in about 31 s
HALLS = 5
PEAK_PEOPLE = 20  # the plan's peak (alerts.queue_peak.headcount)
CLEAR_PEOPLE = 15
REPEAT_S = 3.0
STATE_TOKEN = "pair-day-state-read-0123456789"  # [api.tokens.state] with scope state:read


DEPLOY_RABBIT = Path(__file__).resolve().parents[2] / "deploy/ha/rabbitmq/rabbitmq.conf"


def rabbit_conf(path: Path = DEPLOY_RABBIT) -> dict[str, str]:
    """The `key = value` settings of a rabbitmq.conf (the deploy example's by default)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def noon_zone(now: float | None = None) -> str:
    """An `Etc/GMT` zone in which it is now between 11:00 and 13:00 (never near midnight)."""
    hour = datetime.fromtimestamp(time.time() if now is None else now, UTC).hour
    offset = 12 - hour  # -11 .. +12: Etc/GMT-12 is UTC+12, Etc/GMT+11 is UTC-11
    return "Etc/UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def peak_days(halls: int = HALLS) -> list[Day]:
    """The peak profile for halls h1..hN, each its own seed; devices heartbeat every 10 minutes
    and door counters report at most every minute (fewer messages, the same crowd) and miss
    no one, so each hall is empty at the end of the day and its last peak ends."""
    out = []
    for i in range(halls):
        profile = dataclasses.replace(
            PROFILES["peak"],
            hall=f"h{i + 1}",
            heartbeat_s=600.0,
            door_batch_s=60.0,
            miss_rate=0.0,
        )
        out.append(simulate_day(profile, seed=i + 1))
    return out


def plan_days(days: list[Day], run: str, gateways: int = 4) -> list[Planned]:
    """Every message of the days, at its offset from the start of the played day."""
    start = min(d.messages[0].at for d in days)
    plan = []
    for i, day in enumerate(days):
        for m in day.messages:
            ident = f"{m.payload['id']}@{run}"
            p = Planned(
                (m.at - start) / SPEED, m.topic, {**m.payload, "id": ident}, m.retain, ident
            )
            p.gateway = i % gateways
            plan.append(p)
    plan.sort(key=lambda p: p.offset_s)
    return plan


def stamped(plan: list[Planned], t0: float) -> list[tuple[str, bytes]]:
    """The messages as the publishers send them: `ts` the moment each is due (their formula)."""
    out = []
    for p in plan:
        body = {**p.payload, "ts": int((t0 + p.offset_s + p.skew_s) * 1000)}
        out.append((p.topic, json.dumps(body, ensure_ascii=False).encode()))
    return out


@dataclass
class Truth:
    """The played day through the state core once, in order, without faults: the final state
    the daemons must reach, and each hall's headcount over the day."""

    state: HallsState
    crowd: dict[str, list[tuple[float, int]]] = field(default_factory=dict)

    def halls(self, now: float, heartbeat_s: float) -> dict[str, Any]:
        return comparable(state_summary(self.state, now, heartbeat_s))

    def peaks(self, hall: str, hold_s: float) -> tuple[list[float], int]:
        """The hall's peaks: when each began (it rose to the peak mark from below the clear
        mark, or for the first time), and how many of them held the mark `hold_s` on end."""
        starts: list[float] = []
        held = 0
        armed, counted = True, False
        since: float | None = None  # the current spell at the peak mark began
        for ts, n in self.crowd.get(hall, []):
            if n >= PEAK_PEOPLE:
                if armed:
                    starts.append(ts)
                    armed, counted = False, False
                since = ts if since is None else since
                if not counted and ts - since >= hold_s:
                    held, counted = held + 1, True
            else:
                since = None
                armed = armed or n < CLEAR_PEOPLE
        return starts, held


def truth_of(messages: Iterable[tuple[str, bytes]], zone: str) -> Truth:
    truth = Truth(HallsState(tz=zone))
    for event in unique_events(messages, "hall"):
        if event is None or isinstance(event, Rejection):
            continue
        truth.state.apply(event)
        hall = truth.state.halls[event.hall]
        if hall.today is not None:
            truth.crowd.setdefault(event.hall, []).append((event.ts, hall.today.occupancy))
    return truth


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    """What must be equal per hall: headcount, tickets waiting per service and class, each
    window (state, services, emergency, serving), each device's state and last event time,
    each system's state, the business day and the hall's last event time. Not whether a device
    counts as up now: that depends on when one looks."""
    out = {}
    for name, hall in summary["halls"].items():
        out[name] = {
            "business_day": hall["business_day"],
            "headcount": hall["headcount"],
            "waiting": hall["waiting"],
            "windows": hall["windows"],
            "devices": {d: (v["state"], v["last_seen"]) for d, v in hall["devices"].items()},
            "systems": {s: v["state"] for s, v in hall["systems"].items()},
            "last_event_at": hall["last_event_at"],
        }
    return out


def ticket_counts(state: HallsState) -> dict[str, dict[str, int]]:
    """Per hall, today's ticket transitions as hallwatch_tickets_today reports them."""
    out = {}
    for name, hall in state.halls.items():
        d = hall.today
        if d is not None:
            out[name] = {
                "issued": d.issued,
                "called": d.called,
                "completed": d.completed,
                "no_show": d.no_show,
                "cancelled": d.cancelled,
                "transferred": d.transferred,
            }
    return out


def simulator_counts(truth: list[TicketTruth]) -> dict[str, int]:
    """The simulator's own record of a hall's tickets at the end of its day."""
    return {
        "issued": sum(t.leg == 0 for t in truth),
        "completed": sum(t.outcome == "completed" for t in truth),
        "no_show": sum(t.outcome == "no_show" for t in truth),
        "cancelled": sum(t.outcome == "cancelled" for t in truth),
        "waiting": sum(t.outcome == "open" for t in truth),
    }


def outbox(pg_url: str) -> list[tuple[Any, ...]]:
    """(key, state, claimed_by, done_at, channel, target, payload) of every stored notification."""
    with psycopg.connect(pg_url) as con:
        return con.execute(
            "SELECT key, state, claimed_by, done_at, channel, target, payload"
            " FROM hallwatch.alert_outbox ORDER BY seq"
        ).fetchall()


def event_logs(pg_url: str, names: Iterable[str]) -> dict[str, dict[str, float]]:
    """Each instance's own event log in PostgreSQL (schema hallwatch_<name>): key -> received."""
    out = {}
    with psycopg.connect(pg_url) as con:
        for name in names:
            table = psycopg.sql.Identifier(f"hallwatch_{name}", "events")
            sql = psycopg.sql.SQL("SELECT key, received FROM {}").format(table)
            out[name] = {str(k): float(r) for k, r in con.execute(sql).fetchall()}
    return out


def own_log(pg_url: str, name: str) -> list[tuple[str, bytes]]:
    """An instance's stored events (topic, payload as received) in the order it stored them."""
    table = psycopg.sql.Identifier(f"hallwatch_{name}", "events")
    with psycopg.connect(pg_url) as con:
        sql = psycopg.sql.SQL("SELECT topic, payload FROM {} ORDER BY seq").format(table)
        return [(str(t), bytes(p)) for t, p in con.execute(sql).fetchall()]


def late(messages: list[tuple[str, bytes]]) -> int:
    """How many messages came after a later-stamped one of the same hall (arrival out of
    event-time order, as a broker's redelivery after a failover makes it)."""
    newest: dict[str, int] = {}
    n = 0
    for topic, payload in messages:
        hall, ts = topic.split("/")[1], int(json.loads(payload)["ts"])
        n += ts < newest.get(hall, ts)
        newest[hall] = max(ts, newest.get(hall, ts))
    return n


def missing(logs: dict[str, dict[str, float]], name: str, t0: float) -> str:
    """What `name`'s log lacks of the others', and when the others received it (s after t0)."""
    mine = logs[name]
    lost = sorted(
        r - t0
        for other, log in logs.items()
        if other != name
        for k, r in log.items()
        if k not in mine
    )
    if not lost:
        return f"{name} holds every event the others hold"
    return (
        f"{name} lacks {len(lost)} events the others received at +{lost[0]:.1f}..+{lost[-1]:.1f} s"
    )


def tally(rows: list[tuple[Any, ...]], wecom: FakeWecom) -> tuple[Counter[Any], Counter[Any]]:
    """How often each notification is stored and how often the group shows it. WeCom carries
    no idempotency key, so a message is its robot and its exact content (as
    tests/harness/faultload_measure.py counts them); a key is in the content's row."""
    stored: Counter[Any] = Counter()
    for _key, _state, _by, _done, channel, target, payload in rows:
        body = payload if isinstance(payload, dict) else json.loads(payload)
        assert channel == "wecom", f"only the WeCom robot is configured, got {channel}"
        stored[(f"robot-{target}", str(body["content"]))] += 1
    shown: Counter[Any] = Counter()
    for h in wecom.accepted:
        msgtype = str(h.body.get("msgtype"))
        shown[(h.key, str(h.body.get(msgtype, {}).get("content")))] += 1
    return stored, shown


def pair_config(path: Path, wecom_url: str, zone: str) -> Path:
    """Alerts all day of today (in `zone`); a peak is PEAK_PEOPLE in the hall for 1 s, clears
    below CLEAR_PEOPLE after 1 s, repeats every REPEAT_S; each peak its own episode (no relapse
    window) and no escalation, waits out of play (they shrink with the pace)."""
    today = datetime.now(ZoneInfo(zone)).date()
    path.write_text(
        f"""
[hall]
timezone = "{zone}"

[calendar]
workdays = ["{today.isoformat()}"]
complete_years = [{today.year}, {today.year + 1}]

[alerts]
timezone = "{zone}"
open = "00:00"
close = "23:59"

[alerts.queue_peak]
headcount = {PEAK_PEOPLE}
clear_headcount = {CLEAR_PEOPLE}
wait_s = 36000
clear_wait_s = 36000
for_s = 1
clear_for_s = 1
repeat_s = {REPEAT_S}
relapse_s = 0
escalate_headcount = 1000
escalate_wait_s = 72000
escalate_after_s = 36000

# The day's devices fall silent when its last message is published (wall seconds, at SPEED);
# after 2 wall minutes every device of every hall would be "offline" (66 alerts, paced by the
# robot's 20 a minute) while the test still waits: not what this test is about.
[alerts.device_offline]
after_s = 36000

[api.tokens.state]
token = "{STATE_TOKEN}"
scopes = ["state:read"]

[alerts.wecom]
url = "{wecom_url}/cgi-bin/webhook/send"

[alerts.wecom.robots.supervisor]
key = "robot-supervisor"

[alerts.roles.supervisor]
wecom = ["supervisor"]
""",
        encoding="utf-8",
    )
    return path


class Timeline:
    """What happened when, in seconds from the start, printed as a table at the end."""

    def __init__(self) -> None:
        self.t0 = time.time()
        self.rows: list[tuple[float, str]] = []

    def mark(self, what: str, at: float | None = None) -> float:
        at = time.time() if at is None else at
        self.rows.append((at - self.t0, what))
        return at

    def table(self) -> str:
        return "\n".join(f"  {t:7.2f} s  {what}" for t, what in sorted(self.rows))
