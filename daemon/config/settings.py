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
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config.alerts import AlertSettings
from hallwatch.daemon.config.alerts_reader import read_alerts
from hallwatch.daemon.config.api import ApiSettings, check_exposure
from hallwatch.daemon.config.staff import ComplaintSettings, OutageSettings
from hallwatch.daemon.core.state import Limits
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.sensors.parse import IDENT


def _mask(url: str) -> str:
    """A URL with any password blanked."""
    try:
        parts = urlsplit(url)
        if parts.password:
            return url.replace(f":{parts.password}@", ":***@")
    except ValueError:
        pass
    return url


def _show(url: str) -> str:
    """A URL for an error message, with any password blanked."""
    return repr(_mask(url))


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False

    def url(self) -> str:
        """The broker URL without the password, fit for logs."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class MqttSettings:
    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = "hallwatch"
    protocol: str = "5"
    topic_root: str = "hall"
    keepalive_s: int = 30
    receive_maximum: int = 2000
    session_expiry_s: int = 7 * 24 * 3600
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    # TLS (mqtts://): the broker's certificate is always verified, against `ca_file` or the
    # system's CAs; a client certificate is sent when `cert_file` and `key_file` are set.
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def __repr__(self) -> str:
        # The URL may carry a password (mqtt://user:pass@host); never let it reach a log.
        shown = {
            f.name: _mask(self.url) if f.name == "url" else getattr(self, f.name)
            for f in fields(self)
            if f.repr
        }
        return "MqttSettings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    def broker(self) -> Broker:
        broker = parse_broker_url(self.url, key="mqtt.url")
        return replace(
            broker,
            username=self.username or broker.username,
            password=self.password or broker.password,
        )


@dataclass(frozen=True, slots=True)
class StoreSettings:
    path: str = "hallwatch.db"
    batch_max: int = 500
    synchronous: str = "FULL"
    snapshot_every: int = 20000


@dataclass(frozen=True, slots=True)
class HttpSettings:
    listen: str = "127.0.0.1:9120"
    rate_per_minute: int = 120  # mutating requests per client address; 0: no limit
    # A request's line and headers, and then its body, must each arrive within this; an idle
    # connection is closed after it (aiohttp's keepalive_timeout, from the connection's start).
    read_timeout_s: float = 10.0

    def host_port(self) -> tuple[str, int]:
        return parse_listen(self.listen, key="http.listen")


@dataclass(frozen=True, slots=True)
class HallSettings:
    timezone: str = "Asia/Shanghai"
    heartbeat_timeout_s: float = 90.0
    max_future_s: float = 300.0
    closing: str = "17:00"  # when the estimator asks "will the queue clear by closing?"
    target_wait_s: float = 1200.0  # the plan's 20 minutes: staffing advice aims below it
    # A ticket processed this long after it was issued (a backlog after downtime) gets a quick
    # queue-length estimate instead of the forward simulation, and is not scored.
    estimate_stale_s: float = 60.0


_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    """`[limits]`: the state core's caps (`core.state.Limits`, where the defaults live)."""

    halls: int = _LIMITS.halls
    services: int = _LIMITS.services
    windows: int = _LIMITS.windows
    doors: int = _LIMITS.doors
    devices: int = _LIMITS.devices
    systems: int = _LIMITS.systems
    tickets: int = _LIMITS.tickets
    complaints: int = _LIMITS.complaints

    def limits(self) -> Limits:
        return Limits(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True, slots=True)
class CalendarSettings:
    """Corrections to the official working-day calendar (ISO dates), and years declared complete."""

    holidays: tuple[str, ...] = ()
    workdays: tuple[str, ...] = ()
    complete_years: tuple[int, ...] = ()

    def calendar(self) -> WorkCalendar:
        return WorkCalendar(
            holidays=[date.fromisoformat(d) for d in self.holidays],
            workdays=[date.fromisoformat(d) for d in self.workdays],
            complete_years=[int(y) for y in self.complete_years],
        )


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = "INFO"


@dataclass(frozen=True, slots=True)
class Settings:
    mqtt: MqttSettings = MqttSettings()
    store: StoreSettings = StoreSettings()
    http: HttpSettings = HttpSettings()
    hall: HallSettings = HallSettings()
    limits: LimitsSettings = LimitsSettings()
    calendar: CalendarSettings = CalendarSettings()
    log: LogSettings = LogSettings()
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


def parse_broker_url(url: str, *, key: str) -> Broker:
    """`mqtt://[user:pass@]HOST:PORT` (or `mqtts://`) into a `Broker`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise ConfigError(key, f"{_show(url)} is not a broker URL ({err})") from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(key, f"{_show(url)} is not mqtt://[user:pass@]HOST:PORT")
    tls = parts.scheme == "mqtts"
    if port == 0:
        raise ConfigError(key, f"{_show(url)}: port must be 1-65535")
    return Broker(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def parse_listen(value: str, *, key: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(key, f"{value!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def _positive(kind: type) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v > 0 else f"must be a positive {kind.__name__}"

    return check


def _zone_ok(v: str) -> str | None:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Asia" is a directory: OSError
        return f"unknown time zone {v!r}"
    return None


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "mqtt.url": lambda v: (parse_broker_url(v, key="mqtt.url"), None)[1],
    "mqtt.client_id": lambda v: None if 0 < len(v) <= 64 else "must be 1-64 characters",
    "mqtt.protocol": lambda v: None if v in ("5", "3.1.1") else 'must be "5" or "3.1.1"',
    "mqtt.topic_root": lambda v: None if IDENT.fullmatch(v) else "must match [A-Za-z0-9_.-]{1,64}",
    "mqtt.keepalive_s": _positive(int),
    "mqtt.receive_maximum": lambda v: None if 1 <= v <= 65535 else "must be 1-65535",
    "mqtt.session_expiry_s": _positive(int),
    "mqtt.reconnect_min_s": _positive(float),
    "mqtt.reconnect_max_s": _positive(float),
    "store.batch_max": lambda v: None if 1 <= v <= 10000 else "must be 1-10000",
    "store.synchronous": lambda v: None if v in ("FULL", "NORMAL") else "must be FULL or NORMAL",
    "store.snapshot_every": _positive(int),
    "http.listen": lambda v: (parse_listen(v, key="http.listen"), None)[1],
    "http.rate_per_minute": lambda v: None if 0 <= v <= 100_000 else "must be 0-100000",
    "http.read_timeout_s": lambda v: None if 1 <= v <= 300 else "must be 1-300 seconds",
    "hall.timezone": _zone_ok,
    "hall.heartbeat_timeout_s": _positive(float),
    "hall.max_future_s": _positive(float),
    "hall.closing": lambda v: None if _hhmm(v) else "must be HH:MM",
    "hall.target_wait_s": _positive(float),
    "hall.estimate_stale_s": _positive(float),
    **{f"limits.{f.name}": _positive(int) for f in fields(LimitsSettings)},
    "calendar.holidays": lambda v: _dates(v),
    "calendar.workdays": lambda v: _dates(v),
    "calendar.complete_years": lambda v: (
        None
        if all(str(y).isdigit() and 2000 <= int(y) <= 2100 for y in v)
        else "must be a list of years"
    ),
    "log.level": lambda v: (
        None
        if v in ("DEBUG", "INFO", "WARNING", "ERROR")
        else "must be DEBUG, INFO, WARNING or ERROR"
    ),
}


def _hhmm(value: str) -> bool:
    hh, sep, mm = value.partition(":")
    return bool(sep) and hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60


def _dates(values: tuple[Any, ...]) -> str | None:
    for v in values:
        try:
            date.fromisoformat(str(v))
        except ValueError:
            return f"{v!r} is not a YYYY-MM-DD date"
    return None


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
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as err:
            raise ConfigError("--config", f"cannot read {path}: {err.strerror}") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError("--config", f"{path} is not valid TOML: {err}") from None
        except UnicodeDecodeError:
            raise ConfigError("--config", f"{path} is not UTF-8 (save it as UTF-8)") from None
    base = Settings()
    known = {f.name for f in fields(Settings)} - set(_EXTERNAL)
    for key in overrides or {}:
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
    sections: dict[str, Any] = {}
    for sect_field in fields(Settings):
        sect = sect_field.name
        if sect in _EXTERNAL:
            sections[sect] = _EXTERNAL[sect](data.get(sect, {}), env)
            continue
        default_obj = getattr(base, sect)
        given = dict(data.get(sect, {}))
        keys = {f.name for f in fields(default_obj)}
        for k in given:
            if k not in keys:
                raise ConfigError(f"{sect}.{k}", "unknown key")
        values: dict[str, Any] = {}
        for f in fields(default_obj):
            key = f"{sect}.{f.name}"
            default = getattr(default_obj, f.name)
            value, from_env = given.get(f.name, default), False
            env_name = f"HALLWATCH_{sect}_{f.name}".upper()
            if env_name + "_FILE" in env:
                try:
                    value = Path(env[env_name + "_FILE"]).read_text(encoding="utf-8").strip()
                except OSError as err:
                    raise ConfigError(key, f"cannot read {env_name}_FILE: {err.strerror}") from None
                from_env = True
            elif env_name in env:
                value, from_env = env[env_name], True
            if overrides and key in overrides and overrides[key] is not None:
                value, from_env = overrides[key], isinstance(overrides[key], str)
            if default is None and value == "":
                value = None  # an optional setting left empty is not set
            if value is not None:
                value = _coerce(key, value, default, from_env)
                check = _CHECKS.get(key)
                problem = check(value) if check else None
                if problem:
                    raise ConfigError(key, problem)
            values[f.name] = value
        sections[sect] = replace(default_obj, **values)
    settings = Settings(**sections)
    mq = settings.mqtt
    for key in ("ca_file", "cert_file", "key_file"):
        value = getattr(mq, key)
        if value is not None and not Path(value).is_file():
            raise ConfigError(f"mqtt.{key}", f"{value!r} is not a readable file")
    if (mq.cert_file is None) != (mq.key_file is None):
        raise ConfigError("mqtt.cert_file", "mqtt.cert_file and mqtt.key_file go together")
    if settings.mqtt.reconnect_max_s < settings.mqtt.reconnect_min_s:
        raise ConfigError("mqtt.reconnect_max_s", "must not be below mqtt.reconnect_min_s")
    return settings
