"""The sections that `config.settings` reads key by key ([mqtt], [store], [http], [hall],
[limits], [calendar], [log]): what each holds with its defaults, and `CHECKS`, the rule each key's
value must meet (a problem is a message; `config.settings` raises it as a ConfigError naming
the key). The sections with their own reader are config.alerts, config.api and config.staff.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hallwatch.daemon.base.errors import ConfigError
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
    format: str = "text"  # "json": one JSON object a line, for Loki or ELK


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


CHECKS: dict[str, Callable[[Any], str | None]] = {
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
    "log.format": lambda v: None if v in ("text", "json") else "must be text or json",
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
