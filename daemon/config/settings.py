"""One validated settings object, from a TOML file, the environment and command-line flags.

Precedence: defaults < TOML file < environment (`HALLWATCH_<SECTION>_<KEY>`, or
`HALLWATCH_<SECTION>_<KEY>_FILE` to read a secret from a file) < flags. Every bad value stops
start-up with a `ConfigError` that names the key. Nothing here reads the environment at import.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from hallwatch.daemon.base.errors import ConfigError, env_name
from hallwatch.daemon.config.alerts import AlertSettings
from hallwatch.daemon.config.alerts_reader import read_alerts
from hallwatch.daemon.config.api import ApiSettings, check_exposure
from hallwatch.daemon.config.sections import (
    CHECKS,
    CalendarSettings,
    HallSettings,
    HttpSettings,
    LimitsSettings,
    LogSettings,
    MqttSettings,
    StoreSettings,
)
from hallwatch.daemon.config.staff import ComplaintSettings, OutageSettings


@dataclass(frozen=True, slots=True)
class Settings:
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    hall: HallSettings = field(default_factory=HallSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    calendar: CalendarSettings = field(default_factory=CalendarSettings)
    log: LogSettings = field(default_factory=LogSettings)
    # The [alerts] table, validated by config.alerts_reader.
    alerts: AlertSettings = field(default_factory=AlertSettings)
    # [api]: the HTTP API's tokens and their scopes, validated by config.api.
    api: ApiSettings = field(default_factory=ApiSettings)
    # [complaints] and [outage], validated by config.staff.
    complaints: ComplaintSettings = field(default_factory=ComplaintSettings)
    outage: OutageSettings = field(default_factory=OutageSettings)


# Sections validated by their own module: each reader takes the table and the environment.
_EXTERNAL: dict[str, Callable[[Mapping[str, Any], Mapping[str, str]], Any]] = {
    "alerts": read_alerts,
    "api": ApiSettings.from_mapping,
    "complaints": ComplaintSettings.from_mapping,
    "outage": OutageSettings.from_mapping,
}
# Settings that moved: reading them would be silence, so they stop start-up with the new place.
_MOVED = {
    "staff": "[staff.tokens.NAME] is now [api.tokens.NAME] (the same token and scopes; its "
    "variable HALLWATCH_API_TOKENS_<NAME>_TOKEN[_FILE])",
}
# HALLWATCH_* variables that are not settings: the config file, and the staff CLI's own.
CLIENT_VARIABLES = frozenset(
    {
        "HALLWATCH_CONFIG",
        "HALLWATCH_URL",
        "HALLWATCH_TOKEN",
        "HALLWATCH_TOKEN_FILE",
        "HALLWATCH_UPDATE_SCREENSHOT",  # the test suite's
    }
)
# Variables that were documented but never read, with what to set instead.
_ENV_HINTS = {
    "HALLWATCH_ALERTMANAGER_TOKEN": "the token Alertmanager sends to the webhook is an API "
    'token: add [api.tokens.alertmanager] scopes = ["alerts:forward"] to the config file and '
    "set HALLWATCH_API_TOKENS_ALERTMANAGER_TOKEN_FILE",
    "HALLWATCH_ALERTS_API_TOKEN": "alerts.api_token is now a token in [api.tokens.NAME] with "
    "its scopes (set HALLWATCH_API_TOKENS_<NAME>_TOKEN_FILE)",
}


def _coerce(key: str, value: Any, default: Any, from_env: bool) -> Any:
    """Check `value` against the type of the default (env values arrive as strings)."""
    kind = type(default) if default is not None else str
    if kind is tuple:
        # Lists: a TOML array, or comma-separated in the environment.
        if from_env and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(key, f"expected a list, got {type(value).__name__} {value!r}")
        return tuple(value)
    if from_env and kind is not str:
        try:
            value = kind(value)
        except ValueError:
            raise ConfigError(key, f"{value!r} is not a {kind.__name__}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(key, f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def load(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build and validate the settings. `overrides` maps `section.key` to a value (CLI flags).

    Every `HALLWATCH_*` variable in `env` must be one that a setting read (or a client's, in
    `CLIENT_VARIABLES`): a misspelt or outdated one is an error naming it, not silence."""
    watched = _Watched(env or {})
    settings = _load(path, watched, overrides)
    _unknown_variables(watched)
    check_exposure(settings.http.host_port()[0], settings.api.tokens)
    return settings


class _Watched(Mapping[str, str]):
    """The environment, remembering which names the settings looked up."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self._env[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return key in self._env

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)


def _unknown_variables(env: _Watched) -> None:
    for name in sorted(env):
        if not name.startswith("HALLWATCH_") or name in env.asked or name in CLIENT_VARIABLES:
            continue
        stem = name.removesuffix("_FILE")
        hint = _ENV_HINTS.get(stem)
        if hint is None and stem.startswith("HALLWATCH_STAFF_TOKENS_"):
            hint = _MOVED["staff"]
        if hint is None:
            close = difflib.get_close_matches(name, sorted(env.asked), n=1, cutoff=0.8)
            hint = (
                f"did you mean {close[0]}?"
                if close
                else (
                    "a setting of [alerts], [api], [complaints] or [outage] is read from the "
                    "environment only for a secret whose table is in the config file"
                )
            )
        raise ConfigError(name, f"no setting reads this variable; {hint}")


def _load(
    path: str | Path | None, env: Mapping[str, str], overrides: Mapping[str, Any] | None
) -> Settings:
    data = _read_file(path)
    base = Settings()
    known = {f.name for f in fields(Settings)} - set(_EXTERNAL)
    _check_names(data, overrides or {}, base, known)
    sections: dict[str, Any] = {}
    for sect in (f.name for f in fields(Settings)):
        reader = _EXTERNAL.get(sect)
        if reader is not None:
            sections[sect] = reader(data.get(sect, {}), env)
        else:
            sections[sect] = _section(sect, getattr(base, sect), data.get(sect, {}), env, overrides)
    settings = Settings(**sections)
    _check_mqtt(settings.mqtt)
    return settings


def _read_file(path: str | Path | None) -> dict[str, Any]:
    """The TOML file as a table ({} without a file)."""
    if path is None:
        return {}
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError("--config", f"cannot read {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError("--config", f"{path} is not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise ConfigError("--config", f"{path} is not UTF-8 (save it as UTF-8)") from None


def _check_names(
    data: Mapping[str, Any], overrides: Mapping[str, Any], base: Settings, known: set[str]
) -> None:
    """Every flag names a known key, every table of the file a known section."""
    for key in overrides:
        sect, _, name = key.partition(".")
        if sect not in known or name not in {f.name for f in fields(getattr(base, sect))}:
            raise ConfigError(key, "unknown key")
    for section in data:
        if section in _MOVED:
            raise ConfigError(section, f"moved: {_MOVED[section]}")
        if section not in known and section not in _EXTERNAL:
            raise ConfigError(section, "unknown section")
        if not isinstance(data[section], dict):
            raise ConfigError(section, "must be a table")


def _section(
    sect: str,
    default_obj: Any,
    given: Mapping[str, Any],
    env: Mapping[str, str],
    overrides: Mapping[str, Any] | None,
) -> Any:
    """One section read key by key: default < file < environment < flag, each value checked."""
    keys = {f.name for f in fields(default_obj)}
    for k in given:
        if k not in keys:
            raise ConfigError(f"{sect}.{k}", "unknown key")
    values: dict[str, Any] = {}
    for f in fields(default_obj):
        key = f"{sect}.{f.name}"
        default = getattr(default_obj, f.name)
        value, from_env = _given(key, given.get(f.name, default), env, overrides)
        if default is None and value == "":
            value = None  # an optional setting left empty is not set
        if value is not None:
            value = _coerce(key, value, default, from_env)
            check = CHECKS.get(key)
            problem = check(value) if check else None
            if problem:
                raise ConfigError(key, problem)
        values[f.name] = value
    return replace(default_obj, **values)


def _given(
    key: str, value: Any, env: Mapping[str, str], overrides: Mapping[str, Any] | None
) -> tuple[Any, bool]:
    """The value that wins for `key`, and whether it came as a string from the environment."""
    from_env = False
    var = env_name(key)
    if var + "_FILE" in env:
        try:
            value = Path(env[var + "_FILE"]).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ConfigError(key, f"cannot read {var}_FILE: {err.strerror}") from None
        from_env = True
    elif var in env:
        value, from_env = env[var], True
    if overrides and key in overrides and overrides[key] is not None:
        value, from_env = overrides[key], isinstance(overrides[key], str)
    return value, from_env


def _check_mqtt(mq: MqttSettings) -> None:
    """What no single key can check: the TLS files exist and pair up; the reconnect bounds."""
    for key in ("ca_file", "cert_file", "key_file"):
        value = getattr(mq, key)
        if value is not None and not Path(value).is_file():
            raise ConfigError(f"mqtt.{key}", f"{value!r} is not a readable file")
    if (mq.cert_file is None) != (mq.key_file is None):
        raise ConfigError("mqtt.cert_file", "mqtt.cert_file and mqtt.key_file go together")
    if mq.reconnect_max_s < mq.reconnect_min_s:
        raise ConfigError("mqtt.reconnect_max_s", "must not be below mqtt.reconnect_min_s")
