"""Issue #18's proof on loopback: the HA pair through a simulated peak day of five halls.

Three RabbitMQ nodes (tests/harness/rabbitmq.py, sessions as quorum queues), one private
PostgreSQL, two `hallwatch run` processes (one voice: a shared outbox, a lease), a WeCom-style
receiver, and the halls' gateways publishing the simulator's peak day of five halls at SPEED times
real time, each event stamped when due (tests/harness/pair_day.py). In the morning peak the daemon
that sends is killed with -9 and the survivor's broker node is stopped; in the afternoon both come
back. At the end of the day every stored notification has been shown exactly once, each peak has
one alert id and its firing and end once, and both daemons hold the state of the day's truth: the
day through the state core once, without faults, which itself agrees with the simulator's own
record."""

from __future__ import annotations

import asyncio
import bisect
import collections
import dataclasses
import json
import signal
import statistics
import time
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from hallwatch.sensors.publish import publish_all

from tests.alerts.test_alert_e2e import wait_for
from tests.alerts.test_one_voice import LEASE_S
from tests.conftest import DaemonProcess
from tests.harness.alert_fakes import FakeWecom, serve
from tests.harness.faultload_traffic import Publishers
from tests.harness.pair_day import (
    HALLS,
    REPEAT_S,
    SPEED,
    STATE_TOKEN,
    Timeline,
    comparable,
    event_logs,
    late,
    missing,
    noon_zone,
    outbox,
    own_log,
    pair_config,
    peak_days,
    plan_days,
    rabbit_conf,
    simulator_counts,
    stamped,
    tally,
    ticket_counts,
    truth_of,
)
from tests.harness.rabbitmq import RabbitCluster, find_rabbitmq

# In the suite (3-4 minutes). The broker side holds (every event in both logs, both daemons at
# the truth). Of the alerts-layer faults of #18: keys come from the shared start and the rule (a
# joiner repeats and resolves under the other's keys); an instance still seeing an episode the
# other ended keeps it quiet; a firing inside an ended episode's event-time span (the killed
# daemon restarted far behind on its backlog: HallView.last_event_at) joins it quietly; and a
# kill inside the send->record window (shown, not yet recorded: WeCom has no key to drop the
# survivor's resend) is reported as a warning naming the key, never hidden, at most one.
pytestmark = [
    pytest.mark.skipif(find_rabbitmq() is None, reason="rabbitmq-server is not installed"),
]

NAMES = ("hw-a", "hw-b")
RABBIT_KEYS = ("mqtt.durable_queue_type", "mqtt.prefetch")
# Not NATS (2.9.10 loses an offline session's QoS 1 messages across a node stop and redelivers
# out of order, docs/decisions.md): RabbitMQ 3.10, each daemon's session a quorum queue
# (replicated on the three nodes), 2,000 in flight (as the daemon's mqtt.receive_maximum).
# The two settings are read from the operators' file (deploy/ha/rabbitmq/rabbitmq.conf).
RABBIT_CONF = {k: v for k, v in rabbit_conf().items() if k in RABBIT_KEYS}
HELD_S = 3.0  # a spell at the peak mark this long (wall s) must make an alert: for_s is 1 s
RESTART_AT = 0.6  # share of the day's messages published when the killed ones come back


def api_state(d: DaemonProcess) -> dict[str, Any]:
    req = urllib.request.Request(
        d.base + "/api/state", headers={"Authorization": f"Bearer {STATE_TOKEN}"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        body: dict[str, Any] = msgspec.json.decode(resp.read())
    return body


def halls_of(d: DaemonProcess) -> dict[str, Any]:
    got = comparable(api_state(d))
    return {h: v for h, v in got.items() if h != "probe"}


def probe() -> list[tuple[str, bytes]]:
    """A device of a hall of its own (left out of the comparison), the same id every time."""
    body = {"id": "probe:1", "ts": int(time.time() * 1000), "state": "online", "kind": "other"}
    return [("hall/probe/device/probe", msgspec.json.encode(body))]


def differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Where a daemon's halls differ from the truth's: hall, field, both values (shortened)."""
    out = []
    for hall in sorted(set(got) | set(want)):
        a, b = got.get(hall, {}), want.get(hall, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                out.append(
                    f"{hall}.{key}: daemon {str(a.get(key))[:300]} / truth {str(b.get(key))[:300]}"
                )
    return out


async def at_state(name: str, d: DaemonProcess, want: dict[str, Any], of: str) -> None:
    """Wait until the daemon's halls equal `want`; name the differences if they never do."""
    got: dict[str, Any] = {}

    def same() -> bool:
        nonlocal got
        got = halls_of(d)
        return got == want

    try:
        await wait_for(same, 60, f"{name} to hold {of}")
    except AssertionError as err:
        diffs = "\n".join(differences(got, want)[:20])
        raise AssertionError(f"{err}:\n{diffs}") from None


def unsettled(rows: list[tuple[Any, ...]], wecom: FakeWecom, kill: Kill | None = None) -> str:
    """What keeps the outbox from settling ("" when settled): rows not sent, peak alerts not
    ended, notifications shown other than once (robot, content start, stored, shown), but for
    the one the killed sender had sent and not yet recorded (`in_window`)."""
    peaks = [r[0].split("/")[0] for r in rows if ":queue_peak:" in r[0]]
    ended = {r[0].split("/")[0] for r in rows if ":queue_peak:" in r[0] and "-resolved/" in r[0]}
    stored, shown = tally(rows, wecom)
    if kill is not None:
        shown -= collections.Counter({k: 1 for k in in_window(rows, wecom, kill)})
    odd = [(k[0], k[1][:60], stored[k], shown[k]) for k in stored | shown if stored[k] != shown[k]]
    pending = [r[:3] for r in rows if r[1] != "sent"]
    open_ = sorted(set(peaks) - ended)
    if not (pending or open_ or odd):
        return ""
    return (
        f"{len(pending)} not sent: {pending[:10]}\n{len(open_)} peaks not ended: {open_[:10]}\n"
        f"{len(odd)} shown other than once: {odd[:10]}"
    )


@dataclasses.dataclass(frozen=True)
class Kill:
    """The sender's kill -9: `before` the signal was sent, `after` the process was gone."""

    sender: str
    survivor: str
    before: float
    after: float


def in_window(rows: list[tuple[Any, ...]], wecom: FakeWecom, kill: Kill) -> dict[Any, str]:
    """The notifications shown twice because the sender was killed between the receiver
    showing one and its `sent` being committed (the at-least-once window, docs/decisions.md):
    shown once before the kill and once after, stored once, and recorded by the survivor (had
    the killed sender recorded it, the survivor would never have had it). Each with what
    happened when, to be reported, never hidden."""
    stored, _ = tally(rows, wecom)
    row_of = {(f"robot-{r[5]}", str(_body(r)["content"])): r for r in rows}
    hits: dict[Any, list[float]] = {}
    for h in wecom.accepted:
        msgtype = str(h.body.get("msgtype"))
        hits.setdefault((h.key, str(h.body.get(msgtype, {}).get("content"))), []).append(h.at)
    out = {}
    for k, ats in hits.items():
        row = row_of.get(k)
        if len(ats) != 2 or stored[k] != 1 or row is None:
            continue
        if ats[0] <= kill.after < ats[1] and row[2] == kill.survivor and row[1] == "sent":
            out[k] = (
                f"{row[0]}: shown {(kill.before - ats[0]) * 1000:.1f} ms before the kill"
                f" signal (the process gone {(kill.after - ats[0]) * 1000:.1f} ms after it was"
                f" shown), not recorded by {kill.sender}; sent again by {kill.survivor}"
                f" {ats[1] - kill.after:.2f} s after the kill"
            )
    return out


def _body(row: tuple[Any, ...]) -> dict[str, Any]:
    body = row[6]
    return body if isinstance(body, dict) else dict(json.loads(body))


def episodes(pg_url: str, hall: str) -> list[str]:
    """The shared episode records of a hall's peaks: who began each, when, and its end."""
    with psycopg.connect(pg_url) as con:
        got = con.execute(
            "SELECT since, instance, ended, began_ev, ended_ev FROM hallwatch.alert_episodes"
            " WHERE hall = %s AND alert = 'queue_peak' ORDER BY since",
            (hall,),
        ).fetchall()

    def rel(t: float | None, since: float) -> str:
        return "-" if t is None else f"{t - since:+.1f} s"

    return [
        f"{int(since)} begun by {who}, ended {rel(end, since)}; event time"
        f" {rel(b, since)} .. {rel(e, since)}"
        for since, who, end, b, e in got
    ]


def window_figures(rows: list[tuple[Any, ...]], wecom: FakeWecom) -> str:
    """Shown -> `sent` committed (done_at is the database's clock, the same host's) over every
    notification whose content was stored once and shown once (two repeats of one figure have the
    same text): the at-least-once window as the daemons had it under the day's load."""
    stored, shown = tally(rows, wecom)
    first = {}
    for h in wecom.accepted:
        msgtype = str(h.body.get("msgtype"))
        first[(h.key, str(h.body.get(msgtype, {}).get("content")))] = h.at
    gaps = sorted(
        (float(r[3]) - first[k]) * 1000
        for r in rows
        if r[3] is not None
        and stored[k := (f"robot-{r[5]}", str(_body(r)["content"]))] == shown[k] == 1
    )
    if not gaps:
        return "no notification shown"
    return (
        f"shown -> sent committed over {len(gaps)} notifications: median"
        f" {statistics.median(gaps):.1f} ms, p90 {gaps[int(0.9 * (len(gaps) - 1))]:.1f} ms,"
        f" max {gaps[-1]:.1f} ms"
    )


async def every_event(names: tuple[str, ...], pg_url: str, n: int, t0: float) -> None:
    """Wait until each daemon's own event log holds the day's `n` events; name what is missing."""
    logs: dict[str, dict[str, float]] = {}

    def complete() -> bool:
        nonlocal logs
        logs = event_logs(pg_url, names)
        return all(len(log) == n for log in logs.values())

    try:
        await wait_for(complete, 60, f"every daemon's log to hold the day's {n} events")
    except AssertionError as err:
        gaps = "; ".join(missing(logs, name, t0) for name in names)
        raise AssertionError(f"{err}: {gaps}") from None


async def start_pair(
    daemon_factory: Callable[..., DaemonProcess], cfg: Path, pg_url: str, cluster: RabbitCluster
) -> dict[str, DaemonProcess]:
    """hw-a on r1 and hw-b on r2, each naming the other nodes in turn; both subscribed."""
    nodes = cluster.nodes
    daemons: dict[str, DaemonProcess] = {}
    for i, name in enumerate(NAMES):
        more = [n.mqtt_url for n in nodes[i + 1 :] + nodes[:i]]
        env = {
            "HALLWATCH_CONFIG": str(cfg),
            "HALLWATCH_STORE_URL": pg_url,
            "HALLWATCH_STORE_INSTANCE": name,
            "HALLWATCH_STORE_LEASE_S": str(LEASE_S),
            "HALLWATCH_MQTT_CLIENT_ID": f"pair5-{name}",
            "HALLWATCH_MQTT_PROTOCOL": "3.1.1",
            "HALLWATCH_MQTT_MORE_URLS": ",".join(more),
        }
        daemons[name] = daemon_factory(nodes[i].mqtt_url, extra_env=env)
        await asyncio.to_thread(daemons[name].start)
    for _ in range(60):  # until both sessions hold their subscriptions
        await asyncio.to_thread(publish_all, "127.0.0.1", nodes[2].mqtt_port, probe())
        if all(d.total("hallwatch_events_total", result="accepted") >= 1 for d in daemons.values()):
            return daemons
        await asyncio.sleep(0.5)
    raise AssertionError("the daemons' subscriptions never took the probe")


async def test_pair_five_halls_peak_day_kill_and_node_stop(
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
    pg_url: str,
) -> None:
    """A peak day of five halls through the pair: the sender killed with -9 and the survivor's
    node stopped in the morning peak, both back in the afternoon; each daemon stores every
    event and ends at the truth's state; each stored notification is shown exactly once (one
    resend allowed only where the kill fell between a send and its record, and reported); each
    peak has one alert id, fired and ended once."""
    tl = Timeline()
    zone = noon_zone()
    days = peak_days()
    run = f"pair5-{int(time.time())}"
    plan = plan_days(days, run)
    cluster = RabbitCluster(tmp_path / "rabbit", conf=RABBIT_CONF)
    await asyncio.to_thread(cluster.start)
    tl.mark("three RabbitMQ nodes ready")
    nodes = cluster.nodes
    wecom = FakeWecom(limit=100_000)  # the robots' 20 a minute is not what is tested here
    pubs: Publishers | None = None
    try:
        async with serve(wecom.app()) as url:
            cfg = pair_config(tmp_path / "hallwatch.toml", url, zone)
            daemons = await start_pair(daemon_factory, cfg, pg_url, cluster)
            tl.mark("both daemons connected and subscribed")
            pubs = Publishers(nodes[2].mqtt_port, plan, run)  # the gateways publish via r3
            t0 = time.time() + 0.5
            pubs.start(t0)
            tl.mark(f"day starts: {len(plan)} messages of {HALLS} halls at {SPEED:.0f}x", t0)
            truth = await asyncio.to_thread(truth_of, stamped(plan, t0), zone)

            await wait_for(
                lambda: any(r[1] == "sent" for r in outbox(pg_url)), 30, "the first peak's alert"
            )
            tl.mark("first notification shown", wecom.accepted[0].at)
            sender = next(r[2] for r in outbox(pg_url) if r[1] == "sent")
            survivor = NAMES[1] if sender == NAMES[0] else NAMES[0]
            node = nodes[NAMES.index(survivor)]  # the survivor's own node: it must move on
            killed_at = time.time()
            await asyncio.to_thread(daemons[sender].kill9)
            kill = Kill(sender, survivor, killed_at, time.time())
            tl.mark(f"kill -9 {sender} (the sender)", killed_at)
            shown_at_kill = len(wecom.accepted)
            await asyncio.to_thread(node.stop)
            tl.mark(f"node {node.name} ({survivor}'s) stopped")
            await wait_for(
                lambda: len(wecom.accepted) > shown_at_kill, 30, "the survivor's first delivery"
            )
            first_after = min(h.at for h in wecom.accepted[shown_at_kill:])
            tl.mark(f"{survivor}'s first delivery", first_after)

            await wait_for(lambda: pubs.sent >= RESTART_AT * len(plan), 60, "the afternoon")
            await asyncio.to_thread(cluster.restart, node)
            tl.mark(f"node {node.name} back")
            await asyncio.to_thread(daemons[sender].start)
            tl.mark(f"{sender} back")

            await asyncio.to_thread(pubs.join, 90)
            await asyncio.to_thread(pubs.wait_acked, 60)
            tl.mark("every message of the day published and acknowledged")
            await every_event(NAMES, pg_url, len(plan) + 1, t0)  # and the probe
            tl.mark("each daemon's log holds every event")
            want = truth.halls(time.time(), 90.0)
            for name, d in daemons.items():
                log = await asyncio.to_thread(own_log, pg_url, name)
                own = truth_of(log, zone).halls(time.time(), 90.0)
                own.pop("probe", None)
                await at_state(name, d, own, "the state of its own event log, replayed")
                hint = f"the state of the day's truth ({late(log)} events stored out of order)"
                await at_state(name, d, want, hint)
                tl.mark(f"{name} holds the truth's state")

            # The robots' own 20 a minute (alerts.rate_limits.wecom) paces what is still pending.
            rows = outbox(pg_url)
            pace = 60 + 3.5 * sum(r[1] != "sent" for r in rows)
            try:
                await wait_for(
                    lambda: not unsettled(outbox(pg_url), wecom, kill),
                    pace,
                    "every peak ended and every notification shown",
                )
            except AssertionError as err:
                raise AssertionError(f"{err}:\n{unsettled(outbox(pg_url), wecom, kill)}") from None
            tl.mark("every peak ended, every notification shown")
            await asyncio.sleep(REPEAT_S + 1.0)  # a repeat or a second send would show by now
            for name, d in daemons.items():
                assert halls_of(d) == want, f"{name} moved off the truth"
                for hall, counts in ticket_counts(truth.state).items():
                    got = {
                        e: d.sample("hallwatch_tickets_today", hall=hall, event=e) for e in counts
                    }
                    assert got == counts, f"{name} {hall}: tickets {got}, truth {counts}"
            for name, d in daemons.items():
                assert await asyncio.to_thread(d.stop, signal.SIGTERM) == 0, name
            tl.mark("both daemons stopped cleanly")
    finally:
        if pubs is not None:
            pubs.close()
        await asyncio.to_thread(cluster.stop)
        print(f"\ntimeline:\n{tl.table()}")

    # The third clause of #18's proof (the report built from PostgreSQL equals the one built
    # from a SQLite replay of the same day) is checked by tests/daemon/reports/
    # test_report_pg_day.py on a pair of its own (complaints, call-backs and paper answered
    # across the two), not here: a replay of this day would send its alerts to this receiver.

    # The truth agrees with the simulator's own record of every hall's tickets.
    for day in days:
        hall = day.profile.hall
        sim = simulator_counts(day.truth)
        mine = ticket_counts(truth.state)[hall]
        assert sim["waiting"] == 0 and want[hall]["waiting"] == {}, f"{hall}: a queue is left"
        keys = ("issued", "completed", "no_show", "cancelled")
        assert {k: mine[k] for k in keys} == {k: sim[k] for k in keys}, (hall, mine, sim)

    rows = outbox(pg_url)
    stored, shown = tally(rows, wecom)
    window = in_window(rows, wecom, kill)
    print(f"\n{window_figures(rows, wecom)}; in the window at the kill: {window or 'none'}")
    for k, what in window.items():  # the documented window: reported, not hidden
        warnings.warn(f"at-least-once window hit by the kill: {what}", stacklevel=1)
        shown[k] -= 1
    assert len(window) <= 1, f"one lane, so at most one notification in flight: {window}"
    assert shown == stored, "each stored notification shown exactly once (but for the window)"
    assert all(r[1] == "sent" for r in rows), [r[:3] for r in rows if r[1] != "sent"]
    kinds = collections.Counter(  # a peak's firing/repeat/resolved; other rows by their kind
        r[0].split("/")[1].split("-")[1] if ":queue_peak:" in r[0] else r[0].split("/")[0]
        for r in rows
    )
    peaks = [r[0] for r in rows if ":queue_peak:" in r[0]]
    states = collections.Counter((k.split("/")[0], k.split("/")[1].split("-")[1]) for k in peaks)
    ids = sorted({k.split("/")[0] for k in peaks})
    for alert in ids:
        assert states[(alert, "firing")] == 1, f"{alert}: {states[(alert, 'firing')]} firings"
        assert states[(alert, "resolved")] == 1, f"{alert}: not ended once"
    lines = []
    for day in days:
        hall = day.profile.hall
        starts, held = truth.peaks(hall, HELD_S)
        mine_ids = [a for a in ids if a.startswith(f"{hall}:")]
        # An alert id ends in its episode's start: the peak of the truth it belongs to.
        which = [bisect.bisect_right(starts, float(a.rsplit(":", 1)[1]) + 1) - 1 for a in mine_ids]
        began = (  # who began and ended each, to read a failure by
            f" the day began {t0:.1f}, the truth's peaks {[int(s) for s in starts]};"
            " who began and ended each"
            f" (wall, and the view's event time; None: not known to the rules):\n"
            + "\n".join(f"  {e}" for e in episodes(pg_url, hall))
        )
        assert min(which, default=0) >= 0, f"{hall}: an alert before any peak: {mine_ids};{began}"
        twice = f"{hall}: two alert ids for one peak: {mine_ids};{began}"
        assert len(set(which)) == len(which), twice
        assert len(mine_ids) >= held, f"{hall}: {len(mine_ids)} alerts, {held} peaks held"
        lines.append(
            f"  {hall}: {len(mine_ids)} peak alert ids; truth: {len(starts)} peaks,"
            f" {held} held {HELD_S:.0f} s"
        )
    after = [r for r in rows if r[3] is not None and r[3] > killed_at]
    print(
        f"pair, five halls, peak day at {SPEED:.0f}x: {len(plan)} events published\n"
        f"notifications: {len(rows)} stored {dict(kinds)}, {len(wecom.accepted)} shown,"
        f" {len(ids)} peak alert ids; {sum(r[2] == survivor for r in after)} of {len(after)}"
        f" sent after the kill by {survivor}\n" + "\n".join(lines) + f"\nfailover: {sender}"
        f" killed, {survivor}'s first delivery {first_after - killed_at:.2f} s later"
        f" (lease {LEASE_S} s)"
    )
