"""The configuration error and how a setting's secret is read: a leaf that imports only the
standard library, so every section's reader (config, alerts, the API tokens) can use it without
importing the settings that use them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting is missing, unknown or invalid; `key` names it as `section.key` (or the
    environment variable that is wrong)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config error: {key}: {message}")
        self.key = key


def env_name(key: str) -> str:
    """The environment variable of a setting: `alerts.sms.token` -> HALLWATCH_ALERTS_SMS_TOKEN."""
    return "HALLWATCH_" + re.sub(r"[.\-]", "_", key).upper()


def read_secret(data: Mapping[str, Any], name: str, key: str, env: Mapping[str, str]) -> str:
    """A secret from `HALLWATCH_<KEY>_FILE` (a file), `HALLWATCH_<KEY>` or the table, in that
    order. An error never echoes the value."""
    var = env_name(key)
    if var + "_FILE" in env:
        try:
            return Path(env[var + "_FILE"]).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ConfigError(key, f"cannot read {var}_FILE: {err.strerror}") from None
    if var in env:
        return env[var].strip()
    value = data.get(name, "")
    if not isinstance(value, str):
        raise ConfigError(key, "must be a string")
    return value
