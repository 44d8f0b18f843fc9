"""The `[duty]` section: the duty roster and the acknowledgement links of alert messages.

Who may acknowledge an alert from the phone page is a person of the roster: per role (the role
names of `[alerts.roles]`: supervisor, director, info_centre, the complaint head's role ...),
centre-wide in `[duty.roles.ROLE.people.ID]` and per hall in
`[duty.halls.HALL.roles.ROLE.people.ID]`; a hall that names a role replaces the centre-wide
people of that role (like `alerts.halls.HALL.roles`). A person is on duty on `days` from `start`
to `end` (local time, `alerts.timezone`); an `end` before `start` is an overnight shift that ends
the next morning (it belongs to the day it starts on); `end` equal to `start` is all day.

Links: every alert message carries, per role it reaches, a signed link
`{public_url}/ack/{token}` valid for `link_ttl_s` (HMAC-SHA256 with `key`), and every SMS a
10-character code to type on `{public_url}/ack` (a link does not fit one 70-character SMS
with the alert's number and first action). Without `public_url` the WeCom messages carry the
code too. Without `key` a key is generated once into the database's directory (mode 0600).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Annotated, Literal, get_args

from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config.alerts import OPTIONAL_URL, PHONE
from hallwatch.daemon.config.table import SECRET, Check, Name, doc
from msgspec import Meta

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = get_args(Day)
MIN_KEY_CHARS = 32


def _phone_problem(value: str) -> str | None:
    return None if not value or PHONE.fullmatch(value) else "digits, optionally a leading +"


def _key_problem(value: str) -> str | None:
    if value and len(value) < MIN_KEY_CHARS:
        return f"at least {MIN_KEY_CHARS} characters (`openssl rand -hex 32`), or empty"
    return None


@dataclass(frozen=True, slots=True)
class Person:
    """`[duty...people.ID]`: one person who may acknowledge for the role."""

    name: Annotated[
        str, Meta(min_length=1, max_length=32), doc("shown on the page, kept with the ack")
    ]
    phone: Annotated[str, Check(_phone_problem, "a phone number or empty"), doc("mobile")] = ""
    wecom: Annotated[str, Meta(max_length=64), doc("WeCom user id")] = ""
    days: Annotated[tuple[Day, ...], doc("weekdays on duty (mon ... sun)")] = DAYS
    start: Annotated[time, doc("on duty from, HH:MM")] = time(0, 0)
    end: Annotated[
        time, doc("until, HH:MM; before start: overnight to the next day; equal: all day")
    ] = time(0, 0)

    def problems(self) -> Iterator[tuple[str, str]]:
        if not self.days:
            yield "days", "at least one weekday (mon ... sun)"
        if len(set(self.days)) != len(self.days):
            yield "days", "a weekday is listed twice"

    def on_duty(self, local: datetime) -> bool:
        """Whether the person is on duty at `local` (a time in the roster's zone)."""
        t = local.time().replace(tzinfo=None)
        today = DAYS[local.weekday()]
        if self.start == self.end:
            return today in self.days
        if self.start < self.end:
            return today in self.days and self.start <= t < self.end
        # overnight: from start on a listed day, or before end on the morning after one
        yesterday = DAYS[(local - timedelta(days=1)).weekday()]
        return (today in self.days and t >= self.start) or (yesterday in self.days and t < self.end)

    def shift(self) -> str:
        """The shift in words, for the page: "周一至周五 08:30-17:30"."""
        names = "一二三四五六日"
        idx = sorted(DAYS.index(d) for d in self.days)
        if len(idx) == 7:
            days = "每天"
        elif len(idx) >= 3 and idx[-1] - idx[0] == len(idx) - 1:  # a run: 周一至周五
            days = f"周{names[idx[0]]}至周{names[idx[-1]]}"
        else:
            days = "、".join(f"周{names[i]}" for i in idx)
        if self.start == self.end:
            return f"{days} 全天"
        nxt = "次日" if self.end < self.start else ""
        return f"{days} {self.start:%H:%M}-{nxt}{self.end:%H:%M}"


@dataclass(frozen=True, slots=True)
class RoleRoster:
    """`[duty.roles.ROLE]` / `[duty.halls.HALL.roles.ROLE]`."""

    people: Annotated[Mapping[Name, Person], doc("the role's people, by id")] = field(
        default_factory=dict
    )


@dataclass(frozen=True, slots=True)
class HallRoster:
    """`[duty.halls.HALL]`: the hall's own people per role, over the centre-wide ones."""

    roles: Annotated[Mapping[Name, RoleRoster], doc("per role, replacing duty.roles.ROLE")] = field(
        default_factory=dict
    )


@dataclass(frozen=True, slots=True)
class DutySettings:
    """`[duty]`: acknowledgement links and the duty roster."""

    public_url: Annotated[
        str,
        OPTIONAL_URL,
        doc("the daemon as staff phones reach it, for links; empty: messages carry a code"),
    ] = ""
    link_ttl_s: Annotated[
        float, Meta(ge=60, le=7 * 86400), doc("a link is valid this long after its message, s")
    ] = 12 * 3600.0
    key: Annotated[
        str,
        SECRET,
        Check(_key_problem, f"{MIN_KEY_CHARS}+ characters or empty"),
        doc("the links' HMAC key; empty: generated once into the database's directory"),
    ] = field(default="", repr=False)
    roles: Annotated[Mapping[Name, RoleRoster], doc("centre-wide people per role")] = field(
        default_factory=dict
    )
    halls: Annotated[Mapping[Name, HallRoster], doc("per hall, over duty.roles")] = field(
        default_factory=dict
    )

    def people(self, hall: str, role: str) -> Mapping[str, Person]:
        """The people of `role` in `hall`: the hall's own if it names the role, else the
        centre's."""
        own = self.halls.get(hall)
        if own is not None and role in own.roles:
            return own.roles[role].people
        base = self.roles.get(role)
        return base.people if base is not None else {}

    def on_duty(self, hall: str, role: str, local: datetime) -> dict[str, Person]:
        """The people of `role` in `hall` on duty at `local`, by id."""
        return {pid: p for pid, p in self.people(hall, role).items() if p.on_duty(local)}


def check_roles(duty: DutySettings, known: Iterable[str]) -> None:
    """Every role the roster names is a role the alerts know (a misspelt role would leave the
    page with nobody to pick); ConfigError naming the key."""
    names = sorted(set(known))
    every = [("duty.roles", duty.roles)] + [
        (f"duty.halls.{h}.roles", r.roles) for h, r in duty.halls.items()
    ]
    for prefix, roles in every:
        for role in roles:
            if role not in names:
                close = difflib.get_close_matches(role, names, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(names)}"
                raise ConfigError(f"{prefix}.{role}", f"no such role in [alerts]; {hint}")
