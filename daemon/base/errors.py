"""The configuration error and a setting's environment variable: a leaf that imports only the
standard library, so every section's model (config, alerts, the API tokens) can use it without
importing the settings that use them."""

from __future__ import annotations

import re


class ConfigError(ValueError):
    """A setting is missing, unknown or invalid; `key` names it as `section.key` (or the
    environment variable that is wrong)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config error: {key}: {message}")
        self.key = key


def env_name(key: str) -> str:
    """The environment variable of a setting: `alerts.sms.token` -> HALLWATCH_ALERTS_SMS_TOKEN."""
    return "HALLWATCH_" + re.sub(r"[.\-]", "_", key).upper()
