"""Helpers of the parser's tests (test_parse.py, test_parse_rejects.py): payloads and rejections."""

from __future__ import annotations

import json
from typing import Any

from hallwatch.sensors.events import Rejection
from hallwatch.sensors.parse import parse

TS = "2026-11-26T09:01:02.5+08:00"
TS_EPOCH = 1795654862.5  # the same instant


def enc(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def base(**extra: Any) -> dict[str, Any]:
    return {"id": "tm-01:000123", "ts": TS, **extra}


def rejected(topic: str, body: bytes, root: str = "hall") -> Rejection:
    result = parse(topic, body, root)
    assert isinstance(result, Rejection), result
    return result
