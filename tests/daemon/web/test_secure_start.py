"""Secure by default at start-up: no listening beyond loopback without tokens, no silently
ignored HALLWATCH_* variable, moved token settings say where they went; and the daemon as it
starts with default settings refuses anonymous callers (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config import api
from hallwatch.daemon.config import settings as config

from tests.conftest import ROOT, DaemonProcess, wait_until
from tests.harness.mosquitto import Mosquitto, free_port

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("HALLWATCH_")}


def run_daemon(args: list[str], env: dict[str, str], timeout: float = 30) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "hallwatch.daemon.cli", "run", *args]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**CLEAN_ENV, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def exits_with(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"the daemon kept running:\n{out}")
    return proc.returncode, out


def test_listening_on_all_addresses_without_tokens_exits_2(tmp_path: Path) -> None:
    """`hallwatch run --listen 0.0.0.0:PORT` with no API token (the README's old production
    example) stops with exit 2, naming http.listen, the scopes without a token, and what to
    set; nothing is listening."""
    port = free_port()
    proc = run_daemon(["--db", str(tmp_path / "h.db"), "--listen", f"0.0.0.0:{port}"], {})
    code, out = exits_with(proc)
    assert code == 2, out
    assert "config error: http.listen:" in out and "Traceback" not in out
    assert '"alerts:forward"' in out and "[api.tokens.admin]" in out
    assert "HALLWATCH_API_TOKENS_ADMIN_TOKEN_FILE" in out


def test_listening_on_all_addresses_with_a_token_for_every_scope_starts(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """With a `*` token read from a file, the same daemon starts on 0.0.0.0; /healthz is open,
    /api/state needs the token."""
    secret = tmp_path / "admin.token"
    secret.write_text("0123456789abcdef0123456789abcdef\n")
    cfg = tmp_path / "hallwatch.toml"
    cfg.write_text('[api.tokens.admin]\nscopes = ["*"]\n')
    port = free_port()
    proc = run_daemon(
        [
            "--config",
            str(cfg),
            "--broker",
            broker.url,
            "--db",
            str(tmp_path / "h.db"),
            "--listen",
            f"0.0.0.0:{port}",
        ],
        {
            "HALLWATCH_API_TOKENS_ADMIN_TOKEN_FILE": str(secret),
            "HALLWATCH_MQTT_CLIENT_ID": f"secure-start-{os.getpid()}",
        },
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: (
                proc.poll() is None
                and urllib.request.urlopen(base + "/healthz", timeout=2).status == 200
            ),
            what="the daemon on 0.0.0.0",
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "/api/state", timeout=2)
        assert err.value.code == 401
        req = urllib.request.Request(
            base + "/api/state",
            headers={"Authorization": "Bearer 0123456789abcdef0123456789abcdef"},
        )
        assert "halls" in json.loads(urllib.request.urlopen(req, timeout=2).read())
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_the_variable_alertmanager_yml_used_to_name_stops_start_up(tmp_path: Path) -> None:
    """HALLWATCH_ALERTMANAGER_TOKEN_FILE, which alertmanager.yml told operators to set and the
    daemon ignored, is now exit 2 naming it and the variable that is read instead."""
    token = tmp_path / "am.token"
    token.write_text("x" * 32)
    proc = run_daemon(
        ["--db", str(tmp_path / "h.db")], {"HALLWATCH_ALERTMANAGER_TOKEN_FILE": str(token)}
    )
    code, out = exits_with(proc)
    assert code == 2, out
    assert "config error: HALLWATCH_ALERTMANAGER_TOKEN_FILE:" in out
    assert "HALLWATCH_API_TOKENS_ALERTMANAGER_TOKEN_FILE" in out


def test_alertmanager_example_names_a_variable_the_daemon_reads(tmp_path: Path) -> None:
    """grafana/alertmanager/alertmanager.yml names the token variable the daemon really reads,
    and with the table it names, loading takes the token from that file."""
    text = (ROOT / "grafana/alertmanager/alertmanager.yml").read_text()
    assert "HALLWATCH_ALERTMANAGER_TOKEN_FILE" not in text
    var = "HALLWATCH_API_TOKENS_ALERTMANAGER_TOKEN_FILE"
    assert var in text and "[api.tokens.alertmanager]" in text
    cfg, secret = tmp_path / "h.toml", tmp_path / "am.token"
    cfg.write_text('[api.tokens.alertmanager]\nscopes = ["alerts:forward"]\n')
    secret.write_text("am-token-0123456789abcdef\n")
    (tok,) = config.load(cfg, {var: str(secret)}).api.tokens  # type: ignore[union-attr]
    assert tok.token == "am-token-0123456789abcdef" and tok.scopes == {"alerts:forward"}


def test_unknown_variables_are_named_with_a_hint(tmp_path: Path) -> None:
    """A misspelt setting suggests the right name; a secret for a table the file lacks, and
    the moved token variables, say what to do; the staff CLI's variables are allowed."""
    with pytest.raises(ConfigError) as err:
        config.load(None, {"HALLWATCH_MQTT_PASWORD": "x"})
    assert err.value.key == "HALLWATCH_MQTT_PASWORD"
    assert "HALLWATCH_MQTT_PASSWORD" in str(err.value)
    with pytest.raises(ConfigError) as err:
        config.load(None, {"HALLWATCH_API_TOKENS_OPS_TOKEN": "y" * 20})
    assert "table is in the config file" in str(err.value)
    with pytest.raises(ConfigError) as err:
        config.load(None, {"HALLWATCH_STAFF_TOKENS_DESK_TOKEN_FILE": "/x"})
    assert "[api.tokens.NAME]" in str(err.value)
    with pytest.raises(ConfigError) as err:
        config.load(None, {"HALLWATCH_ALERTS_ENABLED": "false"})  # not read from env
    assert err.value.key == "HALLWATCH_ALERTS_ENABLED"
    allowed = {k: "x" for k in config.CLIENT_VARIABLES}
    assert config.load(None, {**allowed, "HALLWATCH_HTTP_LISTEN": "127.0.0.1:1", "PATH": "/"})
    cfg = tmp_path / "h.toml"
    cfg.write_text('[api.tokens.ops]\nscopes = ["alerts:read"]\n')
    s = config.load(cfg, {"HALLWATCH_API_TOKENS_OPS_TOKEN": "y" * 20})
    assert s.api.tokens[0].token == "y" * 20


@pytest.mark.parametrize(
    ("toml", "key", "says"),
    [
        ('[alerts]\napi_token = "0123456789abcdef"\n', "alerts.api_token", "[api.tokens.NAME]"),
        (
            '[staff.tokens.desk]\ntoken = "0123456789abcdef"\nscopes = []\n',
            "staff",
            "[api.tokens.NAME]",
        ),
        ("[alerts.wecom]\nper_minute = 10\n", "alerts.wecom.per_minute", "rate_limits"),
        ("[alerts.rate_limits.wecom]\nper_recipient = 30\n", "alerts.rate_limits.wecom", "20"),
        ("[alerts.rate_limits.fax]\ntotal = 1\n", "alerts.rate_limits.fax", "unknown"),
        ("[alerts.forward]\nmax_alerts = 0\n", "alerts.forward.max_alerts", "positive"),
        ("[http]\nread_timeout_s = 0\n", "http.read_timeout_s", "1-300"),
    ],
)
def test_moved_and_bad_settings_name_their_key(
    tmp_path: Path, toml: str, key: str, says: str
) -> None:
    """The old token settings, WeCom's old limit keys and bad new limits stop start-up with a
    ConfigError naming the key and saying what to write instead."""
    cfg = tmp_path / "h.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as err:
        config.load(cfg, {})
    assert err.value.key.startswith(key) and says in str(err.value), str(err.value)


@pytest.mark.parametrize(
    ("host", "exposed"),
    [
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("::1", False),
        ("localhost", False),
        ("0.0.0.0", True),
        ("::", True),
        ("192.168.10.5", True),
        ("hall.local", True),
    ],
)
def test_exposure_is_anything_but_loopback(host: str, exposed: bool) -> None:
    """Only loopback addresses may listen without tokens; a wildcard, a LAN address or a name
    may not."""
    assert api.is_loopback(host) is not exposed
    if exposed:
        with pytest.raises(ConfigError) as err:
            api.check_exposure(host, ())
        assert err.value.key == "http.listen"
    else:
        api.check_exposure(host, ())


def test_one_ungranted_scope_is_enough_to_refuse() -> None:
    """Tokens for every scope but alerts:forward: listening on 0.0.0.0 is refused, naming it."""
    held = {s for s in api.ROUTES.values() if s != "alerts:forward"}
    tokens = [api.Token("ops", "t" * 20, frozenset(held))]
    assert api.ungranted(tokens) == ["alerts:forward"]
    with pytest.raises(ConfigError, match='"alerts:forward"'):
        api.check_exposure("0.0.0.0", tokens)
    api.check_exposure(
        "0.0.0.0", [*tokens, api.Token("am", "u" * 20, frozenset({"alerts:forward"}))]
    )


def post(base: str, path: str, body: dict[str, object]) -> int:
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def get(base: str, path: str) -> int:
    try:
        with urllib.request.urlopen(base + path, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def test_default_daemon_refuses_anonymous_callers(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    """`hallwatch run` with default settings: the Alertmanager webhook (600 fingerprints once
    became 1,200 SMS), acks, dead letters and their retry, reports, complaints and the state
    all answer 401 to a caller without a token; metrics, health and the screen stay open."""
    d = daemon_factory(broker.url)
    d.start()
    alerts = [
        {"labels": {"alertname": f"X{i}"}, "annotations": {"summary": "x"}, "fingerprint": f"{i:x}"}
        for i in range(600)
    ]
    webhook = {"version": "4", "status": "firing", "alerts": alerts}
    assert post(d.base, "/api/v1/alertmanager/webhook", webhook) == 401
    assert post(d.base, "/api/v1/alerts/h1:queue_peak:1/ack", {"by": "x"}) == 401
    assert post(d.base, "/api/v1/alerts/dead-letters/1/retry", {}) == 401
    for path in (
        "/api/v1/alerts/dead-letters",
        "/api/report?from=2026-11-01&to=2026-11-02",
        "/api/v1/complaints",
        "/api/state",
        "/api/v1/alerts",
    ):
        assert get(d.base, path) == 401, path
    for path in ("/metrics", "/healthz"):
        assert get(d.base, path) == 200, path
    assert get(d.base, "/screen/h1") == 200
