"""`[hours]`: each hall's opening, closing and lunch rotation, the one source of a hall's hours.

The alert rules (opening hours), the staffing advice ("clear by closing", extended hours), the
off-peak guidance and the staff procedures all read the `core.hours.Timetable` built here. The
keys that said it before keep working as the defaults they were: `alerts.open`/`alerts.close`
and `alerts.halls.ID.open`/`close` (the alert rules' hours) and `hall.closing` (the estimator's
closing). Where one of them and `[hours]` (or two of them) disagree, start-up stops naming the
key: a hall has one closing time. Each old key in use is a start-up warning saying where it goes.

A lunch slot is `{window = "w3", from = "11:30", to = "12:30"}`; TOML cannot name a field
`from` in a dataclass, so the slots are checked here, before the generic reader, and every bad
one names its full key (`hours.halls.east.lunch[1].to`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from typing import TYPE_CHECKING, Annotated, Any

from hallwatch.daemon.base.errors import ConfigError, env_name
from hallwatch.daemon.config.alerts import AlertSettings, HallRules
from hallwatch.daemon.config.table import Name, clock, doc
from hallwatch.daemon.core.hours import Hours, Lunch, Timetable, hhmm, lunch_gaps

if TYPE_CHECKING:
    from hallwatch.daemon.config.alerts_reader import AlertsFile

_SLOT_KEYS = ("window", "from", "to")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
LunchList = tuple[Mapping[str, str], ...]
_LUNCH = 'the lunch rotation: [{window = "w3", from = "11:30", to = "12:30"}, ...]'


@dataclass(frozen=True, slots=True)
class HallHoursFile:
    """`[hours.halls.ID]`: one hall's own hours over the `[hours]` defaults."""

    open: Annotated[time | None, doc("unset: hours.open (or alerts.halls.ID.open)")] = None
    close: Annotated[time | None, doc("unset: hours.close (or alerts.halls.ID.close)")] = None
    lunch: Annotated[LunchList | None, doc("unset: hours.lunch; [] for none; " + _LUNCH)] = None
    windows: Annotated[
        Mapping[Name, tuple[str, ...]],
        doc("window -> the services it serves, to check the lunch rotation before the day"),
    ] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HoursFile:
    """`[hours]`: the centre's hours, and each hall's own in `[hours.halls.ID]`."""

    open: Annotated[time | None, doc("opening time; unset: alerts.open, else 09:00")] = None
    close: Annotated[
        time | None, doc("closing time; unset: alerts.close, else hall.closing (17:00)")
    ] = None
    lunch: Annotated[LunchList, doc("every hall's, unless its own: " + _LUNCH)] = ()
    halls: Annotated[Mapping[Name, HallHoursFile], doc("per hall, over the defaults")] = field(
        default_factory=dict
    )


# --- the lunch slots, checked on the raw table ----------------------------------------------


def normalize(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `[hours]` table with every lunch slot checked and its times as "HH:MM" (TOML local
    times too); a bad slot is a ConfigError naming its key."""
    out = dict(data)
    if "lunch" in out:
        out["lunch"] = _slots(out["lunch"], "hours.lunch")
    halls = out.get("halls")
    if isinstance(halls, dict):
        merged = {}
        for hall, body in halls.items():
            if isinstance(body, dict) and "lunch" in body:
                body = {**body, "lunch": _slots(body["lunch"], f"hours.halls.{hall}.lunch")}
            merged[hall] = body
        out["halls"] = merged
    return out


def _slots(value: Any, key: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise ConfigError(key, f"must be a list of tables, {_LUNCH.split(': ', 1)[1]}")
    return [_slot(item, f"{key}[{i}]") for i, item in enumerate(value)]


def _slot(item: Any, key: str) -> dict[str, str]:
    if not isinstance(item, dict):
        raise ConfigError(key, 'must be a table {window = "w3", from = "11:30", to = "12:30"}')
    for name in item:
        if name not in _SLOT_KEYS:
            raise ConfigError(f"{key}.{name}", "unknown key (known: window, from, to)")
    for name in _SLOT_KEYS:
        if name not in item:
            raise ConfigError(f"{key}.{name}", "missing")
    window = item["window"]
    if not isinstance(window, str) or not _NAME.fullmatch(window):
        raise ConfigError(f"{key}.window", f"must be a window name, got {window!r}")
    out = {"window": window}
    for name in ("from", "to"):
        value = item[name]
        if isinstance(value, time):
            value = value.strftime("%H:%M")
        if not isinstance(value, str):
            raise ConfigError(f"{key}.{name}", f'expected "HH:MM", got {value!r}')
        out[name] = hhmm(clock(value, f"{key}.{name}"))
    if clock(out["to"], key) <= clock(out["from"], key):
        raise ConfigError(f"{key}.to", f"must be after from ({out['from']}), got {out['to']}")
    return out


def _lunch(slots: LunchList) -> tuple[Lunch, ...]:
    return tuple(Lunch(s["window"], clock(s["from"], "from"), clock(s["to"], "to")) for s in slots)


# --- one timetable from [hours] and the keys that said it before ----------------------------


@dataclass(frozen=True, slots=True)
class Legacy:
    """What the older keys said: the alert rules' hours, and `hall.closing` where it was given."""

    open: time | None = None  # alerts.open
    close: time | None = None  # alerts.close
    hall_closing: time | None = None  # hall.closing, when set in the file, environment or flags
    halls: Mapping[str, tuple[time | None, time | None]] = field(default_factory=dict)

    @classmethod
    def of(cls, alerts: AlertsFile, hall_closing: time | None) -> Legacy:
        return cls(
            alerts.open,
            alerts.close,
            hall_closing,
            {h: (body.open, body.close) for h, body in alerts.halls.items()},
        )


def given(
    data: Mapping[str, Any], env: Mapping[str, str], flags: Mapping[str, Any], key: str
) -> bool:
    """Whether `section.name` was set in the file, the environment or a flag (not defaulted)."""
    section, _, name = key.partition(".")
    table = data.get(section)
    var = env_name(key)
    return (
        (isinstance(table, dict) and name in table)
        or var in env
        or f"{var}_FILE" in env
        or flags.get(key) is not None
    )


def _one(candidates: list[tuple[str, time | None]], fallback: time) -> tuple[str, time]:
    """The first value given, and its key; another given value that differs stops start-up."""
    chosen = [(k, v) for k, v in candidates if v is not None]
    if not chosen:
        return "", fallback
    key, value = chosen[0]
    for other, v in chosen[1:]:
        if v != value:
            raise ConfigError(
                other,
                f"{hhmm(v)} disagrees with {key} = {hhmm(value)}: a hall has one opening and "
                f"closing time, for alerts, advice and off-peak guidance; set it in {key} only",
            )
    return key, value


def timetable(f: HoursFile, legacy: Legacy) -> tuple[Timetable, list[str]]:
    """The centre's and each hall's hours, and the warnings to log at start-up (old keys in
    use, a lunch rotation that leaves a service without a window)."""
    notes: list[str] = []
    open_key, opens = _one([("hours.open", f.open), ("alerts.open", legacy.open)], time(9, 0))
    close_key, closes = _one(
        [
            ("hours.close", f.close),
            ("alerts.close", legacy.close),
            ("hall.closing", legacy.hall_closing),
        ],
        time(17, 0),
    )
    for key, new in ((open_key, "hours.open"), (close_key, "hours.close")):
        if key and key != new:
            notes.append(f"{key} is read as {new}: move it there")
    default = _checked(
        Hours(opens, closes, _lunch(f.lunch)),
        "hours",
        inherited=False,
        key=close_key or open_key or "hours.close",
    )
    halls: dict[str, Hours] = {}
    for hall in sorted(set(f.halls) | set(legacy.halls)):
        own = f.halls.get(hall, HallHoursFile())
        old_open, old_close = legacy.halls.get(hall, (None, None))
        prefix = f"hours.halls.{hall}"
        k_open, h_open = _one(
            [(f"{prefix}.open", own.open), (f"alerts.halls.{hall}.open", old_open)], opens
        )
        k_close, h_close = _one(
            [(f"{prefix}.close", own.close), (f"alerts.halls.{hall}.close", old_close)], closes
        )
        for key in (k_open, k_close):
            if key.startswith("alerts."):
                notes.append(f"{key} is read as {prefix}.{key.rsplit('.', 1)[1]}: move it there")
        lunch = default.lunch if own.lunch is None else _lunch(own.lunch)
        hours = Hours(h_open, h_close, lunch, {w: tuple(s) for w, s in own.windows.items()})
        key = k_close or k_open or f"{prefix}.close"  # the hall's own key that makes it so
        halls[hall] = _checked(hours, prefix, inherited=own.lunch is None, key=key)
    tt = Timetable(default, halls)
    for hall, hours in [("", tt.default), *sorted(tt.halls.items())]:
        key = f"hours.halls.{hall}.lunch" if hall else "hours.lunch"
        for gap in lunch_gaps(hours):
            notes.append(f"{key}: the lunch rotation leaves a service uncovered: {gap.text()}")
    return tt, notes


def _checked(hours: Hours, prefix: str, *, inherited: bool, key: str) -> Hours:
    """Closing after opening (else an error on `key`); every lunch slot within the hours, of a
    window the hall has."""
    if hours.close <= hours.open:
        raise ConfigError(
            key, f"closing {hhmm(hours.close)} must be after opening {hhmm(hours.open)}"
        )
    span = f"{hhmm(hours.open)}–{hhmm(hours.close)}"
    for i, slot in enumerate(hours.lunch):
        where = f"hours.lunch[{i}]" if inherited else f"{prefix}.lunch[{i}]"
        if slot.start < hours.open or slot.end > hours.close:
            key = f"{prefix}.lunch" if inherited else where
            raise ConfigError(
                key,
                f"{where} ({slot.text()}) is outside the hours {span}"
                + ("; give the hall its own lunch (or [])" if inherited else ""),
            )
        if hours.windows and slot.window not in hours.windows:
            raise ConfigError(f"{where}.window", f"no window {slot.window!r} in {prefix}.windows")
    return hours


def with_hours(alerts: AlertSettings, tt: Timetable) -> AlertSettings:
    """The alert rules with the timetable's hours and lunch rotation, for every hall it knows."""
    rules = alerts.rules

    def timed(r: HallRules, h: Hours) -> HallRules:
        return replace(r, open=h.open, close=h.close, lunch=h.lunch)

    halls = {hall: timed(r, tt.for_hall(hall)) for hall, r in rules.halls.items()}
    for hall, h in tt.halls.items():
        halls.setdefault(hall, timed(rules.default, h))
    return replace(
        alerts, rules=replace(rules, default=timed(rules.default, tt.default), halls=halls)
    )
