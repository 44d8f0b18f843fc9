"""Reading one TOML table value by value: each getter checks a value's type and range and
raises a ConfigError naming its key. `config.alerts_reader` builds the `[alerts]` settings on it;
secrets come from the file or the environment (`base.errors.read_secret`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from typing import Any
from urllib.parse import urlsplit

from hallwatch.daemon.base.errors import ConfigError, read_secret


class TableReader:
    """Typed getters over a TOML table; `env` supplies secrets."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def table(self, data: Mapping[str, Any], name: str, key: str) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(key, "must be a table")
        return value

    def known(self, data: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
        for k in data:
            if k not in allowed:
                raise ConfigError(f"{prefix}.{k}", "unknown key")

    def secret(self, data: Mapping[str, Any], name: str, key: str) -> str:
        return read_secret(data, name, key, self.env)

    def num(self, data: Mapping[str, Any], name: str, key: str, default: float) -> float:
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"expected a number, got {value!r}")
        if value < 0:
            raise ConfigError(key, f"must not be negative, got {value!r}")
        return float(value)

    def int_(self, data: Mapping[str, Any], name: str, key: str, default: int) -> int:
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(key, f"expected a positive integer, got {value!r}")
        return value

    def bool_(self, data: Mapping[str, Any], name: str, key: str, default: bool) -> bool:
        value = data.get(name, default)
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}")
        return value

    def str_(self, data: Mapping[str, Any], name: str, key: str, default: str) -> str:
        value = data.get(name, default)
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
        return value

    def strs(
        self, data: Mapping[str, Any], name: str, key: str, default: tuple[str, ...] = ()
    ) -> tuple[str, ...]:
        value = data.get(name, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, f"expected a list of strings, got {value!r}")
        return tuple(value)

    def url(self, value: str, key: str, *, empty_ok: bool = False) -> str:
        if not value and empty_ok:
            return value
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            # a URL may hold a key in its query: show only its scheme and host
            shown = f"{parts.scheme}://{parts.hostname}" if parts else "?"
            raise ConfigError(key, f"must be an http(s) URL, got {shown!r}")
        return value.rstrip("?")

    def clock(self, data: Mapping[str, Any], name: str, key: str, default: time) -> time:
        value = data.get(name)
        if value is None:
            return default
        if isinstance(value, time):
            return value
        if isinstance(value, str) and re.fullmatch(r"\d{2}:\d{2}", value):
            h, m = int(value[:2]), int(value[3:])
            if h < 24 and m < 60:
                return time(h, m)
        raise ConfigError(key, f'expected "HH:MM", got {value!r}')

    def levels(
        self,
        data: Mapping[str, Any],
        name: str,
        key: str,
        default: tuple[tuple[str, ...], ...],
    ) -> tuple[tuple[str, ...], ...]:
        raw = data.get(name, [list(lv) for lv in default])
        if (
            not isinstance(raw, list)
            or not raw
            or not all(isinstance(lv, list) and all(isinstance(r, str) for r in lv) for lv in raw)
        ):
            raise ConfigError(key, "expected a list of lists of role names")
        return tuple(tuple(lv) for lv in raw)
