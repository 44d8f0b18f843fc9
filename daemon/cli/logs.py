"""How the daemon's log lines look: the human format (the default), or one JSON object a line
(`log.format = "json"`, `HALLWATCH_LOG_FORMAT=json`, `--log-format json`) for Loki or ELK.

A JSON line holds `time` (ISO 8601 with the offset), `level`, `logger` and `message`, and the
`hall`, `alert`, `event`, `topic` or `reason` a log call passes in `extra`, where there is one.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send every log record at `level` or above to `stream` (stderr) in format `fmt`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter() if fmt == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def json_formatter() -> logging.Formatter:
    """python-json-logger's formatter, with the field names log shippers expect."""
    return JsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        json_ensure_ascii=False,
    )
