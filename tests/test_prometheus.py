"""Prometheus rules, Alertmanager config and the Grafana queries, against the real servers.

promtool and amtool check the files; a real Alertmanager (Debian's package) routes and inhibits
test alerts into a stub of the daemon's webhook; and a real Prometheus scrapes a running daemon
fed a simulated peak morning through a real Mosquitto, then evaluates every dashboard query and
every rule. The tools are required: CI installs them with scripts/ensure-test-tools, and a
missing one fails the test with that instruction rather than skipping it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hallwatch.sensors.profiles import PROFILES, hm
from hallwatch.sensors.simulator import CST, Day, SimMessage, epoch, publish_live, simulate_day

from tests import REPO as ROOT
from tests.conftest import DaemonProcess, wait_until
from tests.harness.mosquitto import Mosquitto, free_port
from tests.harness.promql_pair import check_file
from tests.test_grafana import (
    DASHBOARDS,
    EXPORTED,
    NOT_YET_EXPORTED,
    base_name,
    load,
    promql_names,
    series_names,
    substitute,
    targets,
    variable_queries,
)

RULES = ROOT / "grafana/prometheus/hallwatch-rules.yml"
RULE_TESTS = ROOT / "grafana/prometheus/hallwatch-rules.test.yml"
ALERTMANAGER_CONFIG = ROOT / "grafana/alertmanager/alertmanager.yml"
WEBHOOK = "http://127.0.0.1:9120/api/v1/alertmanager/webhook"
TOKEN_FILE = "/etc/prometheus/hallwatch-webhook.token"


def tool(*names: str, package: str) -> str:
    """The path of the first of `names` on PATH; fails the test when none is installed."""
    for name in names:
        for path in (shutil.which(name), f"/usr/bin/{name}", f"/usr/sbin/{name}"):
            if path and Path(path).exists():
                return path
    pytest.fail(
        f"{names[0]} is not installed (Debian package {package}): run scripts/ensure-test-tools"
    )


def run(cmd: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)


# -- the files, checked by the tools themselves ---------------------------------------------------


def test_promtool_check_rules():
    """promtool accepts the rules file."""
    out = run([tool("promtool", package="prometheus"), "check", "rules", str(RULES)])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_test_rules():
    """The rules' unit tests pass: the plan's 20 people / 20 minutes, outage, escalation, ops."""
    out = run(
        [tool("promtool", package="prometheus"), "test", "rules", RULE_TESTS.name], RULES.parent
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_amtool_check_config():
    """amtool accepts the Alertmanager example config."""
    amtool = tool("amtool", package="prometheus-alertmanager")
    out = run([amtool, "check-config", str(ALERTMANAGER_CONFIG)])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"hall": "h1", "level": "critical", "category": "outage"}, "hallwatch-critical"),
        ({"hall": "h1", "level": "warning", "category": "peak"}, "hallwatch-warning"),
        ({"hall": "h2", "level": "critical", "category": "peak"}, "hallwatch-critical"),
        ({"level": "critical", "category": "ops"}, "hallwatch-ops"),
        ({"level": "warning"}, "hallwatch-ops"),
    ],
)
def test_alertmanager_routes_by_hall_and_level(labels: dict[str, str], receiver: str):
    """Hall alerts go to the critical or warning receiver by level; alerts without a hall
    (the daemon's own health) go to the ops receiver."""
    amtool = tool("amtool", package="prometheus-alertmanager")
    args = [f"{k}={v}" for k, v in labels.items()]
    out = run([amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *args])
    assert out.stdout.strip() == receiver, out.stdout + out.stderr


def test_every_receiver_is_the_daemon_webhook_with_a_token_file():
    """Each receiver posts to the daemon's webhook with the bearer token read from a file."""
    text = ALERTMANAGER_CONFIG.read_text(encoding="utf-8")
    assert text.count("- name: hallwatch-") == text.count(f"url: {WEBHOOK}") == 3
    assert text.count(f"credentials_file: {TOKEN_FILE}") == 3
    assert "type: Bearer" in text and "credentials:" not in text.replace("credentials_file", "")


class _Receiver:
    """A stub of the daemon's Alertmanager webhook, recording each request."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.app = web.Application()
        self.app.router.add_post("/api/v1/alertmanager/webhook", self._hook)

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append((request.headers.get("Authorization", ""), await request.json()))
        return web.json_response({"ok": True})

    def alerts(self) -> list[tuple[str, dict[str, str]]]:
        return [(auth, a["labels"]) for auth, body in self.received for a in body["alerts"]]


def _start_alertmanager(exe: str, tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    with open(tmp_path / "alertmanager.log", "wb") as log:
        return subprocess.Popen(
            [
                exe,
                f"--config.file={tmp_path / 'am.yml'}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",  # no gossip: a single instance
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


async def test_alertmanager_inhibits_peak_alerts_during_an_outage(tmp_path: Path):
    """A real Alertmanager with the example config (webhook pointed at a stub, fast group_wait)
    delivers the hall's outage and another hall's peak with the bearer token, and holds back
    the peak alert of the hall whose system is down."""
    exe = tool("prometheus-alertmanager", "alertmanager", package="prometheus-alertmanager")
    receiver = _Receiver()
    runner = web.AppRunner(receiver.app, access_log=None)
    await runner.setup()
    hook_port, am_port = free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    config = ALERTMANAGER_CONFIG.read_text(encoding="utf-8")
    config = config.replace(WEBHOOK, f"http://127.0.0.1:{hook_port}/api/v1/alertmanager/webhook")
    config = config.replace(TOKEN_FILE, str(token))
    for wait in ("group_wait: 30s", "group_wait: 10s"):
        config = config.replace(wait, "group_wait: 1s")
    (tmp_path / "am.yml").write_text(config, encoding="utf-8")
    proc = _start_alertmanager(exe, tmp_path, am_port)
    base = f"http://127.0.0.1:{am_port}"

    def alert(name: str, hall: str, level: str, category: str) -> dict[str, Any]:
        return {"labels": {"alertname": name, "hall": hall, "level": level, "category": category}}

    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 20
            while True:
                try:
                    async with http.get(base + "/-/ready") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail((tmp_path / "alertmanager.log").read_text())
                await asyncio.sleep(0.1)
            posted = [
                alert("HallwatchSystemDown", "h1", "critical", "outage"),
                alert("HallwatchHallCrowded", "h1", "warning", "peak"),
                alert("HallwatchHallCrowded", "h2", "warning", "peak"),
            ]
            async with http.post(base + "/api/v2/alerts", json=posted) as r:
                assert r.status == 200, await r.text()
            deadline = time.monotonic() + 15
            want = {("HallwatchSystemDown", "h1"), ("HallwatchHallCrowded", "h2")}
            while {(a["alertname"], a["hall"]) for _, a in receiver.alerts()} < want:
                assert time.monotonic() < deadline, f"received only {receiver.received}"
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # the h1 warning group flushes at the same moment as h2's
            async with http.get(base + "/api/v2/alerts") as r:
                state = {
                    (a["labels"]["alertname"], a["labels"]["hall"]): a["status"]
                    for a in await r.json()
                }
    finally:
        proc.terminate()
        proc.wait(10)
        await runner.cleanup()
    delivered = receiver.alerts()
    assert {(a["alertname"], a["hall"]) for _, a in delivered} == want
    assert {auth for auth, _ in delivered} == {"Bearer s3cret-token"}
    assert state[("HallwatchHallCrowded", "h1")]["state"] == "suppressed"
    assert state[("HallwatchHallCrowded", "h1")]["inhibitedBy"]
    assert state[("HallwatchHallCrowded", "h2")]["state"] == "active"
    # One notification per hall and level: the critical one went to its own group.
    groups = {
        (b["groupLabels"].get("hall"), b["groupLabels"].get("level")) for _, b in receiver.received
    }
    assert groups == {("h1", "critical"), ("h2", "warning")}


# -- a real Prometheus scraping a real daemon ---------------------------------------------------


class _Prometheus:
    def __init__(self, workdir: Path, target_port: int) -> None:
        self.exe = tool("prometheus", package="prometheus")
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "prometheus.log"
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "prometheus.yml").write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            f"rule_files:\n  - {RULES}\n"
            "scrape_configs:\n"
            "  - job_name: hallwatch\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target_port}']\n",
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    self.exe,
                    f"--config.file={self.workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"prometheus exited with {self.proc.returncode}:\n{self.log.read_text()}")
        with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as r:
            return r.status == 200

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """A Prometheus API call; an HTTP error's JSON body (status "error") is returned too."""
        data = urllib.parse.urlencode(params).encode()
        try:
            with urllib.request.urlopen(self.base + path, data=data or None, timeout=10) as r:
                return json.loads(r.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as err:
            return json.loads(err.read())  # type: ignore[no-any-return]

    def query(self, expr: str) -> dict[str, Any]:
        return self.api("/api/v1/query", query=expr)

    def values(self, expr: str) -> list[float]:
        out = self.query(expr)
        assert out["status"] == "success", out
        return [float(r["value"][1]) for r in out["data"]["result"]]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[[int], _Prometheus]]:
    made: list[_Prometheus] = []

    def make(target_port: int) -> _Prometheus:
        p = _Prometheus(tmp_path / f"prometheus{len(made)}", target_port)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


def _stamped(payload: dict[str, Any], at: float) -> dict[str, Any]:
    return {**payload, "ts": round(at * 1000)}  # epoch milliseconds, as the contract allows


def peak_morning_until_now(cut_clock: str = "10:40") -> Day:
    """A simulated peak morning up to `cut_clock`, moved in time so that it ends just now.

    The daemon refuses events stamped ahead of its clock and reads a hall as empty once its
    business day is over, so the day must be today and in the past. Events that would fall
    before today's midnight (a run just after midnight) are left out.
    """
    now = time.time()
    today = datetime.now(CST).date()
    day = simulate_day(dataclasses.replace(PROFILES["peak"], date=today), seed=1)
    cut = epoch(day.profile, hm(cut_clock))  # mid-morning peak: a queue, the emergency window
    shift = now - 30 - cut
    midnight = datetime.combine(today, datetime.min.time(), CST).timestamp()

    def moved(m: SimMessage, at: float) -> SimMessage:
        return SimMessage(at, m.topic, {**m.payload, "ts": round(at * 1000)}, m.retain)

    kept = [m for m in day.messages if m.at < cut]
    messages = [moved(m, m.at + shift) for m in kept if m.at + shift > midnight + 60]
    # Run within a few hours after midnight (China time), the morning's start falls before
    # midnight and is left out: the systems', devices' and windows' last reports before it then
    # stand at a minute past midnight, as the state they leave (else, say, no system reported
    # at all and its series is missing: failed at 01:07 China time).
    last: dict[str, SimMessage] = {}
    for m in kept:
        if m.at + shift <= midnight + 60 and "/ticket" not in m.topic:
            last[m.topic] = m
    early = [moved(m, midnight + 61) for m in last.values()]
    return dataclasses.replace(day, messages=early + messages)


def test_real_prometheus_evaluates_every_panel_and_rule(
    broker: Mosquitto,
    daemon_factory: Callable[..., DaemonProcess],
    prometheus_factory: Callable[[int], _Prometheus],
):
    """Prometheus scraping a daemon fed a peak morning through Mosquitto evaluates every panel
    query (instant and range) and every rule without error; the wall display's panels return
    data for the hall unless they need a metric in NOT_YET_EXPORTED; the rules come out healthy
    and the peak alert is already pending."""
    morning = peak_morning_until_now()
    # The morning is fed in seconds, its tickets long issued: estimate them in full anyway,
    # so the accuracy metrics fill as they would live.
    d = daemon_factory(broker.url, extra_env={"HALLWATCH_HALL_ESTIMATE_STALE_S": "1e9"})
    prom = prometheus_factory(d.port)
    prom.start()
    d.start()
    sent = asyncio.run(publish_live(morning, host="127.0.0.1", port=broker.port, speed=None))
    wait_until(lambda: d.health()["last_seq"] == sent, 60, "every event stored")
    fed = time.time()
    wait_until(prom.ready, 30, "prometheus to be ready")

    def scraped_after_feeding() -> bool:
        last = prom.values("timestamp(hallwatch_mqtt_connected)")
        count = prom.values("count_over_time(hallwatch_mqtt_connected[1m])")
        return bool(last and count) and last[0] > fed + 1 and count[0] >= 3

    wait_until(scraped_after_feeding, 30, "three scrapes, one after the day was fed")
    # Rules evaluate every second: wait until they have seen that scrape (a fixed sleep was
    # too short on a loaded machine), i.e. the recording rule and the pending alert are there.
    wait_until(
        lambda: (
            prom.values('hallwatch:plan_load:ratio{hall="h1"}')
            and prom.values('ALERTS{alertname="HallwatchHallCrowded", hall="h1"}')
        ),
        30,
        "the rules to evaluate the scraped figures",
    )

    scraped = {name for name, _ in d.metrics()}
    missing = sorted(m for m in EXPORTED if not series_names(m) & (scraped | {m + "_total"}))
    assert not missing, f"listed as exported but not in /metrics: {missing}"

    errors: list[str] = []
    empty: list[str] = []
    now = time.time()
    for name in DASHBOARDS:
        dash = load(name)
        for var, query in variable_queries(dash):
            result = prom.query(query)
            halls = [r["metric"].get(var) for r in result["data"]["result"]]
            assert halls == ["h1"], f"{name}: variable {var}: {result}"
        for panel, target in targets(dash):
            where = f"{name} / {panel['title']} / {target['refId']}"
            expr = substitute(target["expr"])
            result = prom.query(expr)
            if result["status"] != "success":
                errors.append(f"{where}: {result.get('error')} in {expr}")
                continue
            if target.get("range", not target.get("instant", False)):
                ranged = prom.api(
                    "/api/v1/query_range", query=expr, start=str(now - 30), end=str(now), step="1"
                )
                if ranged["status"] != "success":
                    errors.append(f"{where} (range): {ranged.get('error')} in {expr}")
            bases = {base_name(m) for m in promql_names(target["expr"])[0]}
            if name == "hall-wall" and not bases & NOT_YET_EXPORTED:
                if not result["data"]["result"]:
                    empty.append(f"{where}: {expr}")
    assert not errors, "\n".join(errors)
    assert not empty, "wall-display panels without data:\n" + "\n".join(empty)

    groups = prom.api("/api/v1/rules")["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == RULES.read_text(encoding="utf-8").count("\n      - ")
    for rule in rules:
        name = rule.get("name")
        assert rule["health"] == "ok", f"{name}: {rule.get('lastError')}"
        result = prom.query(rule["query"])
        assert result["status"] == "success", f"{name}: {result.get('error')}"

    # The figures made it through: 56 people at 10:40 is a peak, so the plan's alert is pending
    # (it needs 2 minutes) and the plan load is over 1.
    assert prom.values('hallwatch_hall_headcount{hall="h1"}')[0] >= 20
    assert prom.values('sum(hallwatch_queue_waiting{hall="h1"})')[0] > 0
    assert prom.values('hallwatch:plan_load:ratio{hall="h1"}')[0] >= 1
    assert prom.values('ALERTS{alertname="HallwatchHallCrowded", hall="h1", alertstate="pending"}')


def test_no_panel_or_rule_counts_a_pair_twice(tmp_path: Path) -> None:
    """promtool evaluates every dashboard query and every rule over an HA pair's two instances
    reporting the same halls and outbox (tests/harness/promql_pair.py) and over one of them:
    the same values and as many series, so no figure is doubled and no alert fires twice."""
    import yaml

    exprs = [substitute(t["expr"]) for name in DASHBOARDS for _, t in targets(load(name))]
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    exprs += [rule["expr"] for g in groups for rule in g["rules"]]
    test = tmp_path / "pair.test.yml"
    test.write_text(check_file(str(RULES), exprs), encoding="utf-8")
    out = run([tool("promtool", package="prometheus"), "test", "rules", str(test)], tmp_path)
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    assert "SUCCESS" in out.stdout
