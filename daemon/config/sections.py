"""The sections read key by key from the file, the environment (`HALLWATCH_<SECTION>_<KEY>`) and
flags: [mqtt], [store], [http], [hall], [limits], [calendar], [log]. Each field's type and
`Meta` are its rule (`config.table` reads and checks them); `problems()` holds the rules across
keys. The sections with their own shape in the file are config.alerts_reader, config.api and
config.staff.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config.table import (
    SECRET,
    ZONE,
    Check,
    Positive,
    PositiveInt,
    doc,
)
from hallwatch.daemon.core.state import Limits
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.sensors.parse import IDENT
from msgspec import Meta


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


def _problem(parse: Callable[..., object], says: str) -> Check:
    """A Check from a parser that raises ConfigError."""

    def test(value: str) -> str | None:
        try:
            parse(value, key="")
        except ConfigError as err:
            return str(err).split(": ", 2)[-1]
        return None

    return Check(test, says)


def _hhmm(value: str) -> str | None:
    hh, sep, mm = value.partition(":")
    ok = bool(sep) and hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60
    return None if ok else "must be HH:MM"


def _pg_url(value: str) -> str | None:
    if value and not value.startswith(("postgresql://", "postgres://")):
        return f"{_show(value)} is not a postgresql:// URL"
    return None


def _dates(values: tuple[str, ...]) -> str | None:
    for v in values:
        try:
            date.fromisoformat(v)
        except ValueError:
            return f"{v!r} is not a YYYY-MM-DD date"
    return None


File = str | None


@dataclass(frozen=True, slots=True)
class MqttSettings:
    url: Annotated[
        str,
        _problem(parse_broker_url, "mqtt://[user:pass@]HOST:PORT or mqtts://"),
        doc("the broker; mqtts:// for TLS (a password here is masked in logs)"),
    ] = "mqtt://127.0.0.1:1883"
    more_urls: Annotated[
        tuple[str, ...],
        doc("a cluster's other nodes: each reconnect tries the next (url first), same client id"),
    ] = ()
    username: Annotated[str | None, doc("broker user name (or in the URL)")] = None
    password: Annotated[
        str | None, SECRET, doc("broker password, best via HALLWATCH_MQTT_PASSWORD_FILE")
    ] = field(default=None, repr=False)
    client_id: Annotated[
        str,
        Meta(min_length=1, max_length=64),
        doc("the persistent session's name: one per daemon"),
    ] = "hallwatch"
    protocol: Annotated[
        Literal["5", "3.1.1"], doc("MQTT version; 3.1.1 for brokers without MQTT 5")
    ] = "5"
    topic_root: Annotated[
        str,
        Meta(pattern=rf"\A{IDENT.pattern}\Z"),
        doc("first level of every topic: ROOT/HALL/..."),
    ] = "hall"
    halls: Annotated[
        tuple[Annotated[str, Meta(pattern=rf"\A{IDENT.pattern}\Z")], ...],
        doc("a shard's halls: subscribe to these halls' topics only; empty: every hall"),
    ] = ()
    keepalive_s: Annotated[PositiveInt, doc("MQTT keep-alive, seconds")] = 30
    receive_maximum: Annotated[
        int, Meta(ge=1, le=65535), doc("the broker's in-flight window towards the daemon")
    ] = 2000
    session_expiry_s: Annotated[
        PositiveInt, doc("how long the broker queues for us while we are away, seconds")
    ] = 7 * 24 * 3600
    reconnect_min_s: Annotated[Positive, doc("reconnect backoff's first pause, seconds")] = 0.5
    reconnect_max_s: Annotated[
        Positive, doc("reconnect backoff's cap (capped exponential, full jitter), seconds")
    ] = 30.0
    # TLS (mqtts://): the broker's certificate is always verified, against `ca_file` or the
    # system's CAs; a client certificate is sent when `cert_file` and `key_file` are set.
    ca_file: Annotated[File, doc("CA to verify the broker with (unset: the system's)")] = None
    cert_file: Annotated[File, doc("client certificate, when the broker requires one")] = None
    key_file: Annotated[File, doc("the client certificate's key")] = None

    def __repr__(self) -> str:
        # The URL may carry a password (mqtt://user:pass@host); never let it reach a log.
        shown = {
            f.name: _mask(self.url)
            if f.name == "url"
            else tuple(map(_mask, self.more_urls))
            if f.name == "more_urls"
            else getattr(self, f.name)
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

    def problems(self) -> Iterator[tuple[str, str]]:
        """The TLS files exist and pair up; the reconnect bounds are in order."""
        for key in ("ca_file", "cert_file", "key_file"):
            value = getattr(self, key)
            if value is not None and not Path(value).is_file():
                yield key, f"{value!r} is not a readable file"
        if (self.cert_file is None) != (self.key_file is None):
            yield "cert_file", "mqtt.cert_file and mqtt.key_file go together"
        if self.reconnect_max_s < self.reconnect_min_s:
            yield "reconnect_max_s", "must not be below mqtt.reconnect_min_s"
        for url in self.more_urls:
            try:
                parse_broker_url(url, key="mqtt.more_urls")
            except ConfigError as err:
                yield "more_urls", str(err).split(": ", 2)[-1]

    def brokers(self) -> tuple[Broker, ...]:
        """`url` then `more_urls`, each with the user name and password of `broker()`."""
        first = self.broker()
        more = (parse_broker_url(u, key="mqtt.more_urls") for u in self.more_urls)
        return (
            first,
            *(
                replace(
                    b, username=b.username or first.username, password=b.password or first.password
                )
                for b in more
            ),
        )


@dataclass(frozen=True, slots=True)
class StoreSettings:
    path: Annotated[str, doc("the SQLite database (WAL mode)")] = "hallwatch.db"
    url: Annotated[
        str,
        Check(_pg_url, "empty, or postgresql://[user@]HOST[:PORT]/DB"),
        doc(
            "PostgreSQL for the event store, the outbox, the staff registers and the"
            " acknowledgement log, which reports read; a password via PGPASSWORD or ~/.pgpass"
        ),
    ] = ""
    instance: Annotated[
        str,
        Meta(max_length=40, pattern=r"^[A-Za-z0-9_.-]*$"),
        doc("this daemon's name: its event log and claims in PostgreSQL; empty: the host name"),
    ] = ""
    lease_s: Annotated[
        float,
        Meta(ge=2, le=600),
        doc("PostgreSQL: a dead instance's claimed notifications pass to another after this, s"),
    ] = 15.0
    batch_max: Annotated[int, Meta(ge=1, le=10000), doc("messages per commit at most")] = 500
    synchronous: Annotated[
        Literal["FULL", "NORMAL"],
        doc("FULL: a committed batch survives power loss; NORMAL: only a crash"),
    ] = "FULL"
    snapshot_every: Annotated[
        PositiveInt, doc("snapshot the state after this many new events (and on stop)")
    ] = 20000
    overview_keepalive_s: Annotated[
        float,
        Meta(ge=0.5, le=3600),
        doc(
            "PostgreSQL: each hall's centre-overview row is rewritten at least this often;"
            " another instance's row 3 times older is shown stale"
        ),
    ] = 30.0

    def instance_name(self) -> str:
        """`instance`, or the host name (cut to 40 characters) when it is empty."""
        return self.instance or socket.gethostname()[:40]


@dataclass(frozen=True, slots=True)
class HttpSettings:
    listen: Annotated[
        str,
        _problem(parse_listen, "HOST:PORT"),
        doc("HTTP address; beyond loopback only with a token for every API scope"),
    ] = "127.0.0.1:9120"
    rate_per_minute: Annotated[
        int,
        Meta(ge=0, le=100_000),
        doc("mutating requests and reports per client address a minute; 0: no limit"),
    ] = 120
    # A request's line and headers, and then its body, must each arrive within this; an idle
    # connection is closed after it (aiohttp's keepalive_timeout, from the connection's start).
    read_timeout_s: Annotated[
        float,
        Meta(ge=1, le=300),
        doc("a request's headers, then its body, must arrive within this, seconds"),
    ] = 10.0

    def host_port(self) -> tuple[str, int]:
        return parse_listen(self.listen, key="http.listen")


@dataclass(frozen=True, slots=True)
class HallSettings:
    timezone: Annotated[str, ZONE, doc("business days for tickets and headcount")] = "Asia/Shanghai"
    heartbeat_timeout_s: Annotated[
        Positive, doc("a device silent this long counts as down, seconds")
    ] = 90.0
    max_future_s: Annotated[
        Positive, doc("events stamped further ahead of our clock are rejected, seconds")
    ] = 300.0
    closing: Annotated[
        str,
        Check(_hhmm, "HH:MM"),
        doc("old place of hours.close, read when that and alerts.close are unset"),
    ] = "17:00"
    target_wait_s: Annotated[
        Positive, doc("staffing advice aims below this wait (the plan's 20 minutes), seconds")
    ] = 1200.0
    # A ticket processed this long after it was issued (a backlog after downtime) gets a quick
    # queue-length estimate instead of the forward simulation, and is not scored.
    estimate_stale_s: Annotated[
        Positive, doc("tickets processed later than this get a quick estimate, unscored")
    ] = 60.0


_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    """`[limits]`: the state core's caps (`core.state.Limits`, where the defaults live)."""

    halls: Annotated[PositiveInt, doc("halls at most")] = _LIMITS.halls
    services: Annotated[PositiveInt, doc("services per hall")] = _LIMITS.services
    windows: Annotated[PositiveInt, doc("counter windows per hall")] = _LIMITS.windows
    doors: Annotated[PositiveInt, doc("door counters per hall")] = _LIMITS.doors
    devices: Annotated[PositiveInt, doc("devices per hall")] = _LIMITS.devices
    systems: Annotated[PositiveInt, doc("business systems per hall")] = _LIMITS.systems
    tickets: Annotated[
        PositiveInt, doc("tickets per hall and business day (any ticket event counts)")
    ] = _LIMITS.tickets
    complaints: Annotated[PositiveInt, doc("complaints per hall and business day")] = (
        _LIMITS.complaints
    )

    def limits(self) -> Limits:
        return Limits(**{f.name: getattr(self, f.name) for f in fields(self)})


_DATES = Check(_dates, "YYYY-MM-DD dates")


@dataclass(frozen=True, slots=True)
class CalendarSettings:
    """Corrections to the official working-day calendar (ISO dates), and years declared complete."""

    holidays: Annotated[tuple[str, ...], _DATES, doc("extra days off")] = ()
    workdays: Annotated[tuple[str, ...], _DATES, doc("extra working days (make-up days)")] = ()
    complete_years: Annotated[
        tuple[Annotated[int, Meta(ge=2000, le=2100)], ...],
        doc("years whose official calendar is complete as built in"),
    ] = ()

    def calendar(self) -> WorkCalendar:
        return WorkCalendar(
            holidays=[date.fromisoformat(d) for d in self.holidays],
            workdays=[date.fromisoformat(d) for d in self.workdays],
            complete_years=[int(y) for y in self.complete_years],
        )


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], doc("log level")] = "INFO"
    format: Annotated[
        Literal["text", "json"], doc("json: one JSON object a line, for Loki or ELK")
    ] = "text"
