"""One validated settings object, from a TOML file, the environment and command-line flags.

Precedence: defaults < TOML file < environment (`HALLWATCH_<SECTION>_<KEY>`, or
`HALLWATCH_<SECTION>_<KEY>_FILE` to read a secret from a file) < flags. Every bad value stops
start-up with a `ConfigError` that names the key. Nothing here reads the environment at import.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from typing import Any, ClassVar

from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config.alerts import AlertSettings
from hallwatch.daemon.config.alerts_reader import AlertsFile, build, inherit
from hallwatch.daemon.config.api import ApiFile, ApiSettings, check_exposure
from hallwatch.daemon.config.hours import HoursFile, Legacy, given, normalize, timetable, with_hours
from hallwatch.daemon.config.roster import DutySettings, check_roles
from hallwatch.daemon.config.sections import (
    CalendarSettings,
    HallSettings,
    HttpSettings,
    LimitsSettings,
    LogSettings,
    MqttSettings,
    StoreSettings,
)
from hallwatch.daemon.config.staff import ComplaintSettings, OutageFile, OutageSettings
from hallwatch.daemon.config.table import fields_of, node, read, unknown
from hallwatch.daemon.core.hours import Timetable, hhmm


@dataclass(frozen=True, slots=True)
class Settings:
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    hall: HallSettings = field(default_factory=HallSettings)
    # [hours]: every hall's opening, closing and lunch rotation (config.hours); `hall.closing`
    # and the alert rules' `open`/`close` are this timetable's default.
    hours: Timetable = field(default_factory=Timetable)
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
    # What start-up logs as warnings without stopping (`hallwatch check-config` prints them).
    warnings: tuple[str, ...] = ()
    # [duty]: the duty roster and the acknowledgement links, validated by config.roster.
    duty: DutySettings = field(default_factory=DutySettings)


@dataclass(frozen=True, slots=True)
class SettingsFile:
    """The config file as written: every section and key, the model `load` reads and the
    README's reference is generated from."""

    MOVED: ClassVar[Mapping[str, str]] = {
        "staff": "[staff.tokens.NAME] is now [api.tokens.NAME] (the same token and scopes; its "
        "variable HALLWATCH_API_TOKENS_<NAME>_TOKEN[_FILE])",
    }
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    hall: HallSettings = field(default_factory=HallSettings)
    hours: HoursFile = field(default_factory=HoursFile)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    calendar: CalendarSettings = field(default_factory=CalendarSettings)
    log: LogSettings = field(default_factory=LogSettings)
    alerts: AlertsFile = field(default_factory=AlertsFile)
    api: ApiFile = field(default_factory=ApiFile)
    complaints: ComplaintSettings = field(default_factory=ComplaintSettings)
    outage: OutageFile = field(default_factory=OutageFile)
    duty: DutySettings = field(default_factory=DutySettings)


#: The sections whose every key may come from the environment (elsewhere: only secrets).
ENV_SECTIONS = frozenset({"mqtt", "store", "http", "hall", "limits", "calendar", "log"})
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
            hint = SettingsFile.MOVED["staff"]
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
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    for key in flags:  # a flag sets a key of a section that the environment may set too
        sect, _, name = key.partition(".")
        section = fields_of(SettingsFile)[sect][0] if sect in ENV_SECTIONS else None
        names = list(fields_of(node(section).bare)) if section else []
        if name not in names:
            raise unknown(key, name, names or sorted(ENV_SECTIONS), {})
    if isinstance(data.get("alerts"), dict):
        data = {**data, "alerts": inherit(data["alerts"])}
    if isinstance(data.get("hours"), dict):
        data = {**data, "hours": normalize(data["hours"])}
    f = read(data, SettingsFile, "", env, env_tables=ENV_SECTIONS, overrides=flags)
    hh, _, mm = f.hall.closing.partition(":")  # checked HH:MM (sections._hhmm)
    closing = time(int(hh), int(mm))
    old = closing if given(data, env, flags, "hall.closing") else None
    hours, warnings = timetable(f.hours, Legacy.of(f.alerts, old))
    alerts = with_hours(build(f.alerts), hours)
    check_roles(f.duty, _role_names(alerts, f.complaints))
    return Settings(
        mqtt=f.mqtt,
        store=f.store,
        http=f.http,
        # hall.closing as the timetable says, for the readers of the centre's one closing
        hall=replace(f.hall, closing=hhmm(hours.default.close)),
        hours=hours,
        limits=f.limits,
        calendar=f.calendar,
        log=f.log,
        alerts=alerts,
        api=ApiSettings.build(f.api),
        complaints=f.complaints,
        outage=OutageSettings.build(f.outage),
        warnings=tuple(warnings),
        duty=f.duty,
    )


def _role_names(a: AlertSettings, c: ComplaintSettings) -> set[str]:
    """Every role name the alerts and notices use: the roster may name only these."""
    names = set(a.roles) | set(a.forward.roles) | set(c.remind_roles) | set(c.escalate_roles)
    names |= {r for h in a.rules.halls.values() for r in h.roles}
    names |= {r for lv in (*a.rules.level_roles, *a.rules.outage_roles) for r in lv}
    return names


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
