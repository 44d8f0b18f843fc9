"""Hostile and broken input against every parser: MQTT payloads and topics, the config file and
environment, the `[alerts]` table, and the HTTP API's request bodies. None may crash or hang;
every refusal carries its reason (a `Reason`, a `ConfigError.key`, an HTTP 4xx with an error)."""

from __future__ import annotations

import http.client
import json
import random
import string
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.receiver import add_routes
from hallwatch.alerts.service import Alerts
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config import settings as config
from hallwatch.daemon.config.alerts_reader import read_alerts
from hallwatch.daemon.config.api import Token
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.web.server import HttpServer
from hallwatch.sensors.events import Reason, Rejection
from hallwatch.sensors.parse import IDENT, MAX_ID, parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from tests.harness.fakes import ServerThread

FAST = settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])

# --- MQTT payloads and topics ---------------------------------------------------------------

NOW_MS = 1795654800000
VALID: list[tuple[str, dict[str, Any]]] = [
    (
        "hall/h1/ticket",
        {"id": "t:1", "ts": NOW_MS, "type": "issued", "ticket": "A1", "service": "提取"},
    ),
    ("hall/h1/ticket", {"id": "t:2", "ts": NOW_MS, "type": "called", "ticket": 7, "window": "w1"}),
    ("hall/h1/window/w1", {"id": "w:1", "ts": NOW_MS, "state": "open", "services": ["提取"]}),
    ("hall/h1/door/d1", {"id": "d:1", "ts": NOW_MS, "in_total": 5, "out_total": 2}),
    (
        "hall/h1/device/tm-01",
        {"id": "v:1", "ts": "2026-11-26T09:01:02.5+08:00", "state": "online", "kind": "other"},
    ),
    ("hall/h1/system/core", {"id": "s:1", "ts": NOW_MS, "state": "down", "detail": "x"}),
    (
        "hall/h1/complaint",
        {
            "id": "c:1",
            "ts": NOW_MS,
            "complaint_id": "C1",
            "channel": "visit",
            "severity": "normal",
            "summary": "s",
            "received_by": "staff1",
            "phone": "13800000000",
        },
    ),
]

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=80),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
ident_like = st.one_of(
    st.from_regex(IDENT, fullmatch=True),
    st.text(max_size=70),
    st.sampled_from(["", "+", "#", "h 1", "a" * 65, "h/1", "..", "\x00"]),
)
topics = st.one_of(
    st.text(max_size=120),
    st.builds(
        lambda root, hall, kind, sub: "/".join(p for p in (root, hall, kind, sub) if p is not None),
        st.sampled_from(["hall", "Hall", "", "hall2"]),
        ident_like,
        st.sampled_from(["ticket", "window", "door", "device", "system", "complaint", "x", ""]),
        st.one_of(st.none(), ident_like),
    ),
)


@st.composite
def near_miss(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid message with one to three fields dropped, retyped or replaced, on a real or a
    damaged topic; sometimes cut short or padded."""
    topic, body = draw(st.sampled_from(VALID))
    body = dict(body)
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from([*body.keys(), "type", "ts", "id", "extra"]))
        action = draw(st.sampled_from(["drop", "replace", "huge"]))
        if action == "drop":
            body.pop(field, None)
        elif action == "replace":
            body[field] = draw(json_value)
        else:
            body[field] = "x" * draw(st.sampled_from([129, 2001, 70000]))
    raw = json.dumps(body, ensure_ascii=draw(st.booleans()), allow_nan=True).encode()
    cut = draw(st.sampled_from(["none", "truncate", "prefix", "suffix"]))
    if cut == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif cut == "prefix":
        raw = draw(st.binary(max_size=8)) + raw
    elif cut == "suffix":
        raw = raw + draw(st.binary(max_size=8))
    if draw(st.booleans()):
        topic = draw(topics)
    return topic, raw


def check_parse(topic: str, payload: bytes) -> None:
    """Parse once: an event that honours the contract's limits, or a rejection with a reason."""
    started = time.perf_counter()
    result = parse(topic, payload)
    assert time.perf_counter() - started < 0.5, "parse must not be slow on any input"
    if isinstance(result, Rejection):
        assert isinstance(result.reason, Reason)
        assert result.detail
        assert len(result.topic) <= 256
    else:
        assert IDENT.fullmatch(result.hall)
        assert 1 <= len(result.id) <= MAX_ID
        assert 0 <= result.ts < 10**11


@FAST
@given(topics, st.binary(max_size=300))
def test_parse_random_bytes_never_raise(topic: str, payload: bytes) -> None:
    """Random topics and bytes give an event or a rejection with a Reason, never an exception."""
    check_parse(topic, payload)


@FAST
@given(topics, json_value)
def test_parse_random_json_never_raise(topic: str, value: object) -> None:
    """Any JSON document on any topic gives an event or a rejection with a Reason."""
    check_parse(topic, json.dumps(value, allow_nan=True).encode())


@settings(max_examples=1000, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(near_miss())
def test_parse_near_miss_payloads(msg: tuple[str, bytes]) -> None:
    """Valid messages with fields dropped, retyped, oversized or cut are accepted or refused
    with a reason; none raises."""
    check_parse(*msg)


def test_parse_mutation_fuzz() -> None:
    """20,000 byte-level mutations (flip, insert, delete, splice) of valid payloads: no crash,
    no slow parse, and every reason of the contract shows up among the refusals."""
    rand = random.Random(8)
    reasons: set[Reason] = set()
    for _ in range(20000):
        topic, body = rand.choice(VALID)
        raw = bytearray(json.dumps(body, ensure_ascii=False).encode())
        for _ in range(rand.randint(1, 4)):
            op = rand.randrange(4)
            pos = rand.randrange(len(raw) + 1)
            if op == 0 and raw:
                raw[min(pos, len(raw) - 1)] ^= 1 << rand.randrange(8)
            elif op == 1:
                raw[pos:pos] = bytes([rand.randrange(256)])
            elif op == 2:
                del raw[pos : pos + rand.randint(1, 5)]
            else:
                raw[pos:pos] = rand.choice([b'"', b"{", b"}", b"[", b",", b":", b"\\u", b"1e999"])
        if rand.random() < 0.05:
            topic = topic.replace("h1", rand.choice(["h 1", "", "h1/x", "#"]))
        result = parse(topic, bytes(raw))
        if isinstance(result, Rejection):
            reasons.add(result.reason)
    assert {Reason.BAD_JSON, Reason.WRONG_TYPE, Reason.MISSING_FIELD} <= reasons


def test_parse_invalid_utf8_in_a_string_is_bad_json() -> None:
    """Invalid UTF-8 inside a JSON string is refused as bad_json (found by the mutation fuzz; a
    live daemon given this message exits, and again on every redelivery)."""
    raw = b'{"id": "t:2", "ts": 1795654800000, "type": "c\x91alled", "ticket": "A1", "window": "w"}'
    result = parse("hall/h1/ticket", raw)
    assert isinstance(result, Rejection) and result.reason == Reason.BAD_JSON


# --- the config file and the environment ----------------------------------------------------

SECTIONS: dict[str, list[str]] = {
    "mqtt": ["url", "username", "password", "client_id", "protocol", "topic_root", "keepalive_s"],
    "store": ["path", "batch_max", "synchronous", "snapshot_every"],
    "http": ["listen", "rate_per_minute"],
    "hall": ["timezone", "heartbeat_timeout_s", "max_future_s", "closing", "target_wait_s"],
    "limits": ["halls", "services", "windows", "doors", "devices", "systems", "tickets"],
    "calendar": ["holidays", "workdays", "complete_years"],
    "log": ["level"],
}
toml_leaf = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["mqtt://127.0.0.1:1", "FULL", "Asia/Shanghai", "09:00", "2026-01-01", "5"]),
)
toml_value = st.one_of(toml_leaf, st.lists(toml_leaf, max_size=3))


def toml_text(data: dict[str, dict[str, Any]]) -> str:
    """A small TOML writer (strings as JSON strings, which TOML reads the same)."""

    def lit(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(lit(x) for x in v) + "]"
        if isinstance(v, int | float):
            return repr(v)
        return json.dumps(v)

    out = []
    for section, table in data.items():
        out.append(f"[{json.dumps(section)}]")
        out += [f"{json.dumps(k)} = {lit(v)}" for k, v in table.items()]
    return "\n".join(out) + "\n"


sections = st.dictionaries(
    st.one_of(st.sampled_from(list(SECTIONS)), st.text(max_size=8)),
    st.dictionaries(
        st.one_of(st.sampled_from(sorted({k for ks in SECTIONS.values() for k in ks})), st.text()),
        toml_value,
        max_size=4,
    ),
    max_size=4,
)
envs = st.dictionaries(
    st.sampled_from(
        [f"HALLWATCH_{s}_{k}".upper() for s, ks in SECTIONS.items() for k in ks]
        + ["HALLWATCH_MQTT_PASSWORD_FILE", "HALLWATCH_HTTP_RATE_PER_MINUTE"]
    ),
    st.one_of(st.text(max_size=30), st.sampled_from(["0", "-1", "1e3", "nan", "/nonexistent/x"])),
    max_size=4,
)


@pytest.fixture(scope="module")
def cfg_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cfg") / "hallwatch.toml"


@FAST
@given(sections, envs)
def test_config_load_only_raises_config_error(
    cfg_path: Path, data: dict[str, dict[str, Any]], env: dict[str, str]
) -> None:
    """Random TOML tables and environment give settings or a ConfigError that names a key."""
    try:
        text = toml_text(data)
    except (TypeError, ValueError):
        return
    cfg_path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config.load(cfg_path, env)
    except ConfigError as err:
        assert isinstance(err.key, str)  # may be "": a section named "" is refused by name
        assert str(err).startswith("config error: ")


@FAST
@given(st.binary(max_size=200))
def test_config_garbage_file_is_a_config_error(cfg_path: Path, raw: bytes) -> None:
    """A config file of random bytes is refused as a ConfigError, never a crash."""
    cfg_path.write_bytes(raw)
    try:
        config.load(cfg_path, {})
    except ConfigError as err:
        assert str(err).startswith("config error: ")


def test_config_file_not_utf8_is_a_config_error(cfg_path: Path) -> None:
    """A config file in GBK (a likely mistake on a Chinese desktop) is a ConfigError on --config."""
    cfg_path.write_bytes('[hall]\nclosing = "17:00" # 关门\n'.encode("gbk"))
    with pytest.raises(ConfigError) as err:
        config.load(cfg_path, {})
    assert err.value.key == "--config"


ALERT_KEYS = [
    "enabled",
    "timezone",
    "open",
    "close",
    "queue_peak",
    "device_offline",
    "system_outage",
    "halls",
    "levels",
    "roles",
    "service_names",
    "wecom",
    "sms",
    "webhooks",
    "alertmanager",
    "forward",
    "outbox",
    "rate_limits",
]
alert_inner = st.recursive(
    st.one_of(toml_leaf, st.sampled_from(["supervisor", "13800000000", "http://127.0.0.1:9"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "robots",
                        "key",
                        "url",
                        "wecom",
                        "sms",
                        "provider",
                        "for_s",
                        "headcount",
                        "supervisor",
                        "h1",
                        "roles",
                        "endpoint",
                        "alerts",
                    ]
                ),
                st.text(max_size=6),
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


@FAST
@given(st.dictionaries(st.sampled_from(ALERT_KEYS), alert_inner, max_size=5), envs)
def test_alert_settings_only_raise_config_error(data: dict[str, Any], env: dict[str, str]) -> None:
    """Random `[alerts]` tables give settings or a ConfigError whose key is under `alerts`."""
    try:
        read_alerts(data, env)
    except ConfigError as err:
        assert err.key.startswith("alerts"), err.key


# --- HTTP API bodies ------------------------------------------------------------------------

TOKEN = "fuzz-token-0123456789"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The daemon's HTTP app (body cap, rate limit off) with the alert endpoints mounted on a
    real Alerts service and outbox, served from a thread: (host, port)."""
    db = tmp_path_factory.mktemp("api") / "outbox.db"
    alert_settings = read_alerts(
        {
            "wecom": {"url": "http://127.0.0.1:9/send", "robots": {"r": {"key": "k"}}},
            "roles": {"supervisor": {"wecom": ["r"]}},
        },
        {},
    )
    server = HttpServer(
        "127.0.0.1",
        0,
        CollectorRegistry(),
        HallsState,
        lambda: (True, {}),
        time.time,
        90.0,
        rate_per_minute=0,
        tokens=[Token("fuzz", TOKEN, frozenset({"*"}))],
    )
    outbox = Outbox(db)
    engine = Alerts(alert_settings, outbox, clock=time.time)

    async def opened(app: web.Application) -> None:
        await outbox.__aenter__()
        await engine.start()

    async def closed(app: web.Application) -> None:
        await outbox.__aexit__(None, None, None)

    server.app.on_startup.append(opened)
    server.app.on_cleanup.append(closed)
    add_routes(server.app, engine, outbox)
    thread = ServerThread(server.app)
    (url,) = thread.start()
    host, port = url.removeprefix("http://").split(":")
    yield host, int(port)
    thread.stop()


def post(api: tuple[str, int], path: str, body: bytes, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection(*api, timeout=5)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status >= 400 and resp.status != 413:
            assert "error" in json.loads(data), data  # every refusal says why
        return resp.status
    finally:
        conn.close()


am_alert = st.fixed_dictionaries(
    {},
    optional={
        "status": st.one_of(st.sampled_from(["firing", "resolved"]), json_value),
        "labels": st.one_of(
            st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=4), json_value
        ),
        "annotations": st.one_of(
            st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3), json_value
        ),
        "startsAt": st.one_of(st.just("2026-11-26T01:00:00Z"), json_value),
        "endsAt": json_value,
        "fingerprint": json_value,
        "generatorURL": json_value,
    },
)
am_payload = st.fixed_dictionaries(
    {},
    optional={
        "version": st.one_of(st.just("4"), json_value),
        "status": json_value,
        "alerts": st.one_of(st.lists(am_alert, max_size=3), json_value),
        "groupLabels": json_value,
        "commonLabels": json_value,
        "externalURL": json_value,
    },
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_value.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    am_payload.map(lambda v: json.dumps(v, allow_nan=True).encode()),
)
auth = st.sampled_from([f"Bearer {TOKEN}", f"Bearer {TOKEN}x", "", "Basic abc", f"bearer {TOKEN}"])
GOOD = (f"Bearer {TOKEN}", f"bearer {TOKEN}")  # the scheme is case-insensitive (RFC 9110)


@settings(max_examples=300, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(bodies, auth, st.sampled_from(["application/json", "text/plain", ""]))
def test_webhook_bodies_never_500(
    api: tuple[str, int], body: bytes, authorization: str, ctype: str
) -> None:
    """Random and near-miss Alertmanager payloads get 200, 400 or 401, never a 500 or a hang."""
    headers = {"Content-Type": ctype} if ctype else {}
    if authorization:
        headers["Authorization"] = authorization
    status = post(api, "/api/v1/alertmanager/webhook", body, headers)
    assert status in (200, 400, 401), status
    if authorization not in GOOD:
        assert status == 401


@settings(max_examples=200, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet=string.ascii_letters + string.digits + "%:._-~", min_size=1, max_size=80),
    bodies,
    auth,
)
def test_ack_bodies_never_500(api: tuple[str, int], ident: str, body: bytes, authorization: str):
    """Acks of random ids with random bodies get 200, 400, 401 or 404, never a 500."""
    headers = {"Authorization": authorization} if authorization else {}
    status = post(api, f"/api/v1/alerts/{ident}/ack", body, headers)
    assert status in (200, 400, 401, 404), status


@pytest.mark.parametrize(
    "path",
    ["/api/v1/alertmanager/webhook", "/api/v1/alerts/x/ack", "/api/v1/alerts/dead-letters/1/retry"],
)
def test_oversized_bodies_get_413(api: tuple[str, int], path: str) -> None:
    """A body over the 64 KiB cap is refused with 413 by every endpoint that reads one."""
    body = json.dumps({"version": "4", "alerts": [], "pad": "x" * 70_000}).encode()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    status = post(api, path, body, headers)
    if path.endswith("/retry"):
        assert status in (404, 413)  # it never reads its body: refused by id, or by size
    else:
        assert status == 413
