"""MQTT over TLS: server verification, client certificates and passwords, on a real Mosquitto."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import DaemonProcess, wait_until
from tests.harness.mosquitto import Mosquitto

PASSWORD = "s3cret-Hall-pw"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(d: Path, name: str) -> None:
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.crt",
        "-subj",
        f"/CN={name}",
        cwd=d,
    )


def _signed(d: Path, name: str, ca: str, san: str | None) -> None:
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN={name}",
        cwd=d,
    )
    ext = d / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.crt",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        f"{name}.crt",
        "-extfile",
        str(ext),
        cwd=d,
    )


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1, a client certificate, and a rogue CA."""
    d = tmp_path / "pki"
    d.mkdir()
    _ca(d, "ca")
    _ca(d, "rogue")
    _signed(d, "server", "ca", "IP:127.0.0.1")
    _signed(d, "client", "ca", None)
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(d / "passwd"), "hallwatch", PASSWORD],
        check=True,
        capture_output=True,
    )
    (d / "password").write_text(PASSWORD + "\n")
    return d


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Path) -> Iterator[Mosquitto]:
    """Mosquitto with a TLS listener that requires a client certificate and a password."""
    extra = "\n".join(
        [
            f"cafile {pki / 'ca.crt'}",
            f"certfile {pki / 'server.crt'}",
            f"keyfile {pki / 'server.key'}",
            "require_certificate true",
            f"password_file {pki / 'passwd'}",
        ]
    )
    mosq = Mosquitto(tmp_path / "mosq-tls", listener_extra=extra, anonymous=False)
    mosq.start()
    yield mosq
    mosq.stop()


def _tls_env(pki: Path, ca: str = "ca") -> dict[str, str]:
    return {
        "HALLWATCH_MQTT_USERNAME": "hallwatch",
        "HALLWATCH_MQTT_PASSWORD_FILE": str(pki / "password"),
        "HALLWATCH_MQTT_CA_FILE": str(pki / f"{ca}.crt"),
        "HALLWATCH_MQTT_CERT_FILE": str(pki / "client.crt"),
        "HALLWATCH_MQTT_KEY_FILE": str(pki / "client.key"),
    }


def _publish_tls(port: int, pki: Path, topic: str, payload: bytes) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tls-device")
    c.tls_set(
        ca_certs=str(pki / "ca.crt"),
        certfile=str(pki / "client.crt"),
        keyfile=str(pki / "client.key"),
    )
    c.username_pw_set("hallwatch", PASSWORD)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        c.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        c.disconnect()
        c.loop_stop()


def test_tls_with_client_certificate_and_password(
    tls_broker: Mosquitto, pki: Path, daemon_factory: Callable[..., DaemonProcess]
):
    """Over mqtts:// with a verified server, a client certificate and a password, events flow."""
    url = f"mqtts://127.0.0.1:{tls_broker.port}"
    d = daemon_factory(url, extra_env=_tls_env(pki))
    d.start()
    body = {
        "id": "tm:1",
        "ts": int(time.time() * 1000),
        "type": "issued",
        "ticket": "A1",
        "service": "提取",
    }
    _publish_tls(tls_broker.port, pki, "hall/h1/ticket", json.dumps(body).encode())
    wait_until(lambda: d.sample("hallwatch_events_total", result="accepted") == 1)
    assert PASSWORD not in d.log.read_text()


def test_tls_refuses_a_server_the_ca_did_not_sign(
    tls_broker: Mosquitto, pki: Path, daemon_factory: Callable[..., DaemonProcess]
):
    """Against a CA that did not sign the broker's certificate, the daemon never connects."""
    url = f"mqtts://127.0.0.1:{tls_broker.port}"
    d = daemon_factory(url, extra_env=_tls_env(pki, ca="rogue"))
    d.start(wait_connected=False)
    wait_until(lambda: "certificate verify failed" in d.log.read_text(), 20, "a TLS failure")
    health = d.health()
    assert health["ok"] is False and health["mqtt_connected"] is False
    assert PASSWORD not in d.log.read_text()


def test_wrong_password_is_refused(
    tls_broker: Mosquitto, pki: Path, daemon_factory: Callable[..., DaemonProcess], tmp_path: Path
):
    """With a wrong password the broker refuses the daemon; it keeps retrying, never connected."""
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    env = {**_tls_env(pki), "HALLWATCH_MQTT_PASSWORD_FILE": str(wrong)}
    d = daemon_factory(f"mqtts://127.0.0.1:{tls_broker.port}", extra_env=env)
    d.start(wait_connected=False)
    wait_until(lambda: d.log.read_text().count("retrying in") >= 2, 20, "refused connects")
    assert d.health()["mqtt_connected"] is False
    assert "not-the-password" not in d.log.read_text()
