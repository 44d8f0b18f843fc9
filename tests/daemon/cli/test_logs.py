"""Log lines for people (the default) and for log shippers (`log.format = "json"`)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.cli import logs
from hallwatch.daemon.cli.main import _settings, build_parser
from hallwatch.daemon.config import settings as config
from hallwatch.sensors.publish import publish_all

from tests.conftest import DaemonProcess, wait_until
from tests.harness.mosquitto import Mosquitto


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_line_has_the_fields_a_shipper_reads(restore_logging: None) -> None:
    """A JSON line carries time, level, logger, the formatted message (Chinese as it is) and the
    hall and alert the call passed."""
    out = io.StringIO()
    logs.configure("INFO", "json", out)
    logging.getLogger("hallwatch.alerts").info(
        "alert %s firing: %s", "h1:queue_peak:1", "厅内32人", extra={"hall": "h1", "alert": "a"}
    )
    logging.getLogger("hallwatch.alerts").debug("below the level")
    (line,) = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "INFO" and record["logger"] == "hallwatch.alerts"
    assert record["message"] == "alert h1:queue_peak:1 firing: 厅内32人"
    assert (record["hall"], record["alert"]) == ("h1", "a")
    assert record["time"][:2] == "20" and record["time"][-5] in "+-"


def test_text_stays_the_default(restore_logging: None) -> None:
    """Without a format the line is the human one, not JSON."""
    out = io.StringIO()
    logs.configure("INFO", stream=out)
    logging.getLogger("hallwatch").warning("计划 %d", 20)
    assert out.getvalue().rstrip().endswith("WARNING hallwatch: 计划 20")


def test_flag_and_environment_choose_the_format() -> None:
    """`--log-format json` and HALLWATCH_LOG_FORMAT=json both set log.format; another value
    stops start-up naming the key."""
    args = build_parser().parse_args(["run", "--log-format", "json"])
    assert _settings(args).log.format == "json"
    assert config.load(None, {"HALLWATCH_LOG_FORMAT": "json"}).log.format == "json"
    with pytest.raises(ConfigError, match=r"log\.format"):
        config.load(None, {"HALLWATCH_LOG_FORMAT": "xml"})


def test_daemon_writes_only_json_lines(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    """`hallwatch run` with HALLWATCH_LOG_FORMAT=json: every line it writes, from start-up to a
    rejected message to the clean stop, is one JSON object; the rejection names topic and reason."""
    d = daemon_factory(broker.url, extra_env={"HALLWATCH_LOG_FORMAT": "json"})
    d.start()
    publish_all("127.0.0.1", broker.port, [("hall/h1/ticket", b"{not json")])
    wait_until(lambda: d.sample("hallwatch_events_total", result="rejected") == 1)
    assert d.stop() == 0
    records = [json.loads(line) for line in d.log.read_text().splitlines() if line.strip()]
    assert any(r["message"].startswith("serving http://") for r in records)
    (reject,) = [r for r in records if r.get("reason") == "bad_json"]
    assert reject["topic"] == "hall/h1/ticket" and reject["level"] == "WARNING"
    assert records[-1]["message"] == "stopped"
