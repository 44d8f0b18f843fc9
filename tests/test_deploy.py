"""deploy/systemd: the unit passes `systemd-analyze verify` and carries the hardening the threat
model promises; the example configuration it runs loads, with the secrets the unit hands over,
on a network address."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config import settings as config

from tests.conftest import ROOT

UNIT = ROOT / "deploy/systemd/hallwatch.service"
EXAMPLE = ROOT / "deploy/systemd/hallwatch.toml.example"


def unit_options() -> dict[str, list[str]]:
    """Every `Key=value` of the unit's [Service] section, keys that repeat collected."""
    out: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_unit_verifies_with_systemd_analyze(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a single warning (ExecStart pointed at
    this checkout's hallwatch, since /opt/hallwatch is not installed here)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    exe = Path(sys.executable).parent / "hallwatch"
    unit = tmp_path / "hallwatch.service"
    unit.write_text(UNIT.read_text().replace("/opt/hallwatch/.venv/bin/hallwatch", str(exe)))
    p = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr
    # A broken key is reported (so the empty output above means something).
    bad = tmp_path / "bad.service"
    bad.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=bogus"))
    p = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True, text=True)
    assert "bogus" in p.stdout + p.stderr


def test_unit_restarts_and_is_hardened() -> None:
    """Restart on failure (not on a config error), UMask 0077, a dedicated user, a read-only
    system with only the database folder writable, private /tmp, no home, no new privileges."""
    o = unit_options()
    want = {
        "Restart": "on-failure",
        "RestartPreventExitStatus": "2",
        "UMask": "0077",
        "User": "hallwatch",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ReadWritePaths": "/var/lib/hallwatch",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "StateDirectoryMode": "0700",
        "CapabilityBoundingSet": "",
    }
    for key, value in want.items():
        assert o.get(key) == [value], (key, o.get(key))
    assert any("HALLWATCH_STORE_PATH=/var/lib/hallwatch/" in e for e in o["Environment"])
    sysusers = (ROOT / "deploy/systemd/hallwatch.sysusers").read_text()
    assert "u hallwatch " in sysusers


def test_example_config_loads_with_the_units_secrets_on_a_network_address(tmp_path: Path) -> None:
    """The example listens on 0.0.0.0 and loads with the token files the unit passes (every
    variable it sets is read); without the token files it would be refused."""
    env: dict[str, str] = {}
    for line in unit_options()["Environment"]:
        name, _, value = line.partition("=")
        if name.endswith("_FILE"):
            f = tmp_path / name
            f.write_text("s3cret-" + name.lower()[-20:] + "-0123456789\n")
            env[name] = str(f)
        else:
            env[name] = value.replace("/var/lib/hallwatch", str(tmp_path))
    text = EXAMPLE.read_text().replace("/etc/hallwatch/broker-ca.pem", str(tmp_path / "ca.pem"))
    (tmp_path / "ca.pem").write_text("not checked at load\n")
    cfg = tmp_path / "hallwatch.toml"
    cfg.write_text(text)
    s = config.load(cfg, env)
    assert s.http.host_port()[0] == "0.0.0.0"
    assert s.api is not None and {t.name for t in s.api.tokens} == {"admin", "alertmanager"}
    assert s.mqtt.password is not None
    no_tokens = {k: v for k, v in env.items() if "API_TOKENS" not in k}
    with pytest.raises(ConfigError):
        config.load(cfg, no_tokens)


def test_unit_file_parses_as_ini() -> None:
    """The unit is well-formed key=value sections (a cheap check where systemd is absent)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
