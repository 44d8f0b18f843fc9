"""Bounded input on the HTTP side, against the real daemon's app: no route answers 500 to
hostile query strings, path values or bodies; dates are checked; every read has a deadline
(a real slow client socket)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from hallwatch.sensors.publish import publish_all
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from tests.harness.live_daemon import LiveDaemon, token_of
from tests.harness.mosquitto import Mosquitto

READ_TIMEOUT_S = 2.0
ALL = token_of("*")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    """The real daemon (read deadline 2 s) with a hall, a complaint and an outage to work on."""
    tmp = tmp_path_factory.mktemp("hostile")
    mosq = Mosquitto(tmp / "mosquitto")
    mosq.start()
    d = LiveDaemon(tmp / "daemon", mosq.url, http_config=f"read_timeout_s = {READ_TIMEOUT_S}\n")
    d.start()
    now = int(time.time() * 1000)
    events = [
        ("hall/h1/window/w1", {"state": "open", "services": ["提取"]}),
        ("hall/h1/ticket", {"type": "issued", "ticket": "A001", "service": "提取"}),
        ("hall/h1/system/core", {"state": "down", "detail": "test"}),
    ]
    publish_all(
        "127.0.0.1",
        mosq.port,
        [
            (t, json.dumps({"id": f"e{i}", "ts": now, **p}).encode())
            for i, (t, p) in enumerate(events)
        ],
    )
    complaint = {
        "hall": "h1",
        "complaint_id": "C-1",
        "channel": "visit",
        "summary": "等候太久",
        "received_by": "张三",
    }
    assert d.call("POST", "/api/v1/complaints", ALL, json.dumps(complaint).encode()).status in (
        200,
        201,
    )
    for _ in range(100):  # the outage reaches the state through the broker
        if d.call("GET", "/api/v1/outages", ALL).json()["outages"]:
            break
        time.sleep(0.1)
    yield d
    d.stop()
    mosq.stop()


def path_for(pattern: str, values: list[str]) -> str:
    parts = pattern.split("/")
    it = iter(values)
    return "/".join(quote(next(it, "h1"), safe="") if p.startswith("{") else p for p in parts)


# --- the deep-nesting and date reproductions ------------------------------------------------

BODY_ROUTES = [
    ("POST", "/api/v1/alertmanager/webhook"),
    ("POST", "/api/v1/alerts/x/ack"),
    ("POST", "/api/v1/complaints"),
    ("POST", "/api/v1/complaints/h1/C-1/transitions"),
    ("POST", "/api/v1/callbacks"),
    ("PUT", "/api/v1/outages/h1"),
]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_deeply_nested_json_is_400_not_500(live: LiveDaemon, method: str, path: str) -> None:
    """A body nested 50,000 deep (under the 64 KiB cap), which made the JSON decoder raise
    RecursionError and the route answer 500, is a 400 with a reason."""
    for body in (b"[" * 50_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000):
        r = live.call(method, path, ALL, body)
        assert r.status == 400, (path, r.status, r.body[:200])
        assert r.json()["error"]


@pytest.mark.parametrize(
    "query",
    [
        "from=9999-12-31&to=9999-12-31",
        "from=0001-01-01&to=0001-01-02",
        "from=1970-01-01&to=1970-01-01",
        "from=2026-13-01&to=2026-13-02",
        "from=2026-10-09&to=2026-10-01",
        "from=2026-01-01&to=2026-12-31",
        "from=2026-10-01",
        "from=%00&to=%00",
    ],
)
def test_report_dates_out_of_range_are_400(live: LiveDaemon, query: str) -> None:
    """/api/report with years outside 2000-2100 (9999-12-31 overflowed to a 500), a reversed
    or too long period or no dates answers 400 with a message that says what is wrong."""
    r = live.call("GET", f"/api/report?{query}", ALL)
    assert r.status == 400, (query, r.status)
    assert r.json()["error"]


def test_report_cli_refuses_year_9999(tmp_path: Path) -> None:
    """`hallwatch report --from 9999-12-31` exits 2 with a message, not a traceback."""
    cmd = [sys.executable, "-m", "hallwatch.daemon.cli", "report", "--from", "9999-12-31"]
    cmd += ["--to", "9999-12-31", "--out", str(tmp_path / "r"), "--db", str(tmp_path / "x.db")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALLWATCH_")}
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert "2000-2100" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "2026-02-30", "10000-01-01"])
def test_archive_dates_out_of_range_are_400(live: LiveDaemon, value: str) -> None:
    """The complaint archive's from/to take years 2000-2100; others are a 400, not a 500."""
    for key in ("from", "to"):
        r = live.call("GET", f"/api/v1/complaints/archive.csv?{key}={value}", ALL)
        assert r.status == 400, (key, value, r.status)


# --- read deadlines, with a real slow client -------------------------------------------------


def open_socket(live: LiveDaemon) -> socket.socket:
    s = socket.create_connection((live.host, live.port), timeout=10)
    s.settimeout(0.2)
    return s


def held_for(s: socket.socket, drip: bytes | None, limit_s: float) -> float:
    """Send `drip` a byte every 0.25 s (None: nothing) until the server closes; seconds held."""
    started = time.monotonic()
    i = 0
    try:
        while time.monotonic() - started < limit_s:
            if drip is not None and i < len(drip):
                s.send(drip[i : i + 1])
                i += 1
            try:
                if s.recv(4096) == b"":
                    break
            except TimeoutError:
                pass
            time.sleep(0.05)
    except OSError:  # reset by the server
        pass
    finally:
        s.close()
    return time.monotonic() - started


def test_slow_headers_are_cut_at_the_read_timeout(live: LiveDaemon) -> None:
    """A client dribbling its request headers a byte at a time (it held a connection for 45 s
    and more before) is disconnected once http.read_timeout_s has passed."""
    drip = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 400
    took = held_for(open_socket(live), drip, limit_s=READ_TIMEOUT_S + 15)
    assert took < READ_TIMEOUT_S + 3.5, took


def test_an_idle_connection_is_closed(live: LiveDaemon) -> None:
    """A connection that sends nothing at all is closed after the read timeout."""
    took = held_for(open_socket(live), None, limit_s=READ_TIMEOUT_S + 15)
    assert took < READ_TIMEOUT_S + 3.5, took


def test_slow_body_gets_408(live: LiveDaemon) -> None:
    """Headers in time but a body that dribbles in is answered 408 at the read timeout, and
    the connection is closed soon after (aiohttp would otherwise linger 10 s reading it)."""
    s = open_socket(live)
    head = (
        "POST /api/v1/complaints HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {ALL}\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    s.sendall(head)
    started, answer, answered = time.monotonic(), b"", 0.0
    try:
        while time.monotonic() - started < READ_TIMEOUT_S + 15:
            s.send(b" ")
            try:
                chunk = s.recv(4096)
            except TimeoutError:
                chunk = None
            if chunk == b"":
                break
            if chunk:
                answer += chunk
                answered = answered or time.monotonic() - started
            time.sleep(0.2)
    except OSError:
        pass
    finally:
        s.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert answered < READ_TIMEOUT_S + 2.5, answered
    assert time.monotonic() - started < READ_TIMEOUT_S + 1.0 + 3.5  # + lingering_time


def test_keep_alive_still_serves_prompt_clients(live: LiveDaemon) -> None:
    """Two requests on one connection, each sent at once, are both answered."""
    s = socket.create_connection((live.host, live.port), timeout=5)
    try:
        for _ in range(2):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            got = s.recv(4096)
            assert got.startswith(b"HTTP/1.1 "), got[:50]
    finally:
        s.close()


# --- every route, hostile input ---------------------------------------------------------------

hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "2026-11-26",
            "2026-11-27T10:00:00+08:00",
            "11:30",
            "9999-12-31",
            "0001-01-01",
            "2026-02-30",
            "2026-10-01T25:00",
            "1e400",
            "-1",
            "99999999999999999999999",
            "nan",
            "\x00",
            "\u202e",
            "../../etc/passwd",
            "h1",
            "C-1",
            "A" * 300,
            "true",
            "[]",
            "{}",
        ]
    ),
)
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "hall",
    "complaint_id",
    "channel",
    "severity",
    "summary",
    "received_by",
    "phone",
    "department",
    "action",
    "by",
    "note",
    "proposal",
    "to_department",
    "to_person",
    "name",
    "expected_recovery_at",
    "version",
    "status",
    "alerts",
]
bodies = st.one_of(
    st.binary(max_size=300),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(FIELDS), json_value, max_size=8).map(
        lambda v: json.dumps(v).encode()
    ),
    st.integers(min_value=1000, max_value=60_000).map(lambda n: b"[" * n),
)
QUERY_KEYS = ["from", "to", "hall", "format", "state", "open", "pending", "title", "x"]
queries = st.lists(
    st.tuples(st.one_of(st.sampled_from(QUERY_KEYS), hostile_text), hostile_text), max_size=5
)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    data=st.data(),
    values=st.lists(hostile_text, min_size=2, max_size=2),
    query=queries,
    body=bodies,
)
def test_no_route_answers_500_to_hostile_input(
    live: LiveDaemon,
    data: st.DataObject,
    values: list[str],
    query: list[tuple[str, str]],
    body: bytes,
) -> None:
    """Any route of the real app, with hostile path values, query strings and bodies and a
    token holding every scope, answers below 500, and every JSON refusal says why."""
    method, pattern = data.draw(st.sampled_from([r for r in live.routes() if r[0] != "HEAD"]))
    path = path_for(pattern, values)
    qs = urlencode(query)
    if qs:
        path += "?" + qs
    send = body if method in ("POST", "PUT") else None
    r = live.call(method, path, ALL, send)
    assert r.status < 500, (method, path, send[:100] if send else None, r.status, r.body[:300])
    if r.status >= 400 and r.headers.get("Content-Type", "").startswith("application/json"):
        assert "error" in r.json()
