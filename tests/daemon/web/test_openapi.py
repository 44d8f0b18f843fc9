"""The HTTP API's OpenAPI document: it describes exactly the routes the daemon serves, the copy
in docs/ is current, and schemathesis finds no server error and no answer off its schema."""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hallwatch.daemon.config import api
from hallwatch.daemon.web import openapi

from tests import REPO
from tests.conftest import DaemonProcess
from tests.harness.live_daemon import LiveDaemon, config_text, token_of
from tests.harness.mosquitto import Mosquitto


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    """The real daemon with one token per scope, a broker of its own."""
    tmp = tmp_path_factory.mktemp("openapi")
    mosq = Mosquitto(tmp / "mosquitto")
    mosq.start()
    d = LiveDaemon(tmp / "daemon", mosq.url).start()
    yield d
    d.stop()
    mosq.stop()


def test_document_describes_exactly_the_served_routes(live: LiveDaemon) -> None:
    """GET /api/openapi.json needs no token and lists every route of the real app, no more, each
    with the scope the auth layer asks for (or none for the public ones)."""
    reply = live.call("GET", "/api/openapi.json")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("application/json")
    doc = reply.json()
    assert doc["openapi"].startswith("3.1")
    described = {
        (method.upper(), path): op
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }
    assert set(described) == {(m, p) for m, p in live.routes() if m != "HEAD"}
    for route, op in described.items():
        assert op.get("x-scope") == api.ROUTES.get(route), route
        assert (op["security"] == []) == (route in api.PUBLIC), route
        names = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert names == set(re.findall(r"{(\w+)}", route[1])), route


def test_docs_copy_is_the_generated_document() -> None:
    """docs/openapi.json is what the code generates (refresh it with
    `.venv/bin/python -m hallwatch.daemon.web.openapi > docs/openapi.json`)."""
    committed = json.loads((REPO / "docs" / "openapi.json").read_text(encoding="utf-8"))
    assert committed == openapi.document(openapi.OPERATIONS)


def test_document_refuses_to_drift() -> None:
    """A route without an entry, or an entry without a route, is an error, not a silent gap."""
    routes = set(openapi.OPERATIONS)
    with pytest.raises(ValueError, match="without an OpenAPI entry"):
        openapi.document(routes | {("DELETE", "/api/v1/complaints")})
    with pytest.raises(ValueError, match="without a route"):
        openapi.document(routes - {("GET", "/api/state")})


def test_malformed_request_is_400_without_an_error_log(
    live: LiveDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    """A NUL byte in a header is answered 400 and leaves no ERROR line with a traceback (aiohttp
    logs those by default: anyone could fill the log)."""
    with socket.create_connection((live.host, live.port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Probe: \x00\r\n\r\n")
        first = s.recv(200)
    assert re.match(rb"HTTP/1\.[01] 400 ", first), first
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(
    tmp_path: Path, broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    """schemathesis, against `hallwatch run` as a real process with an all-scopes token, over
    every operation of the served document: no 5xx, and every status, content type, header and
    body matches the document."""
    cfg = tmp_path / "hallwatch.toml"
    cfg.write_text(config_text(tmp_path / "fuzz.db", broker.url))
    d = daemon_factory(broker.url, extra_env={"HALLWATCH_CONFIG": str(cfg)})
    d.start()
    checks = (
        "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance,response_headers_conformance"
    )
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"http://127.0.0.1:{d.port}/api/openapi.json",
            "--header",
            f"Authorization: Bearer {token_of('*')}",
            "--checks",
            checks,
            "--max-examples",
            "25",
            "--generation-deterministic",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # its cache folder goes there, not into the checkout
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    m = re.search(r"Operations:\s+(\d+) selected / (\d+) total", out)
    assert m is not None and m[1] == m[2], out[:2000]
    operations = int(m[1])  # every operation the daemon serves, as its document says
    assert operations >= 26, out[:2000]
    assert re.search(rf"Tested: {operations}\b", out), (operations, out[-2000:])
    generated = re.search(r"(\d+) generated, (\d+) passed", out)
    assert generated and generated.group(1) == generated.group(2) and int(generated.group(1)) > 500
