"""The `[complaints]` and `[outage]` sections: complaint deadlines, the outage call-back register
and the HTTP health probes. Validated once at start. (The staff API's tokens are in `[api]`:
`hallwatch.daemon.config.api`.)

Each `from_mapping(data, env)` takes its TOML table and the environment; a bad value raises
`ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from hallwatch.daemon.config.table import HTTP_URL, Check, Name, NotNegative, PositiveInt, doc, read
from msgspec import Meta


@dataclass(frozen=True, slots=True)
class ComplaintSettings:
    """Deadlines of the complaint procedure (plan 4.2), in working days, and who hears of them."""

    verify_working_days: Annotated[
        PositiveInt, doc("receipt -> verified with a proposed answer, working days")
    ] = 2
    answer_working_days: Annotated[
        PositiveInt, doc("receipt -> answered to the complainant, working days")
    ] = 2
    follow_up_working_days: Annotated[
        PositiveInt, doc("answered -> follow-up call done, working days")
    ] = 5
    remind_before_s: Annotated[
        NotNegative, doc('remind this long before a deadline ("due soon"), seconds')
    ] = 4 * 3600.0
    remind_roles: Annotated[tuple[str, ...], doc("roles reminded (the department head)")] = (
        "supervisor",
    )
    escalate_roles: Annotated[tuple[str, ...], doc("roles told of overdue or serious ones")] = (
        "supervisor",
        "director",
    )
    default_department: Annotated[str, doc("department of a complaint that names none")] = (
        "服务大厅"
    )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> ComplaintSettings:
        return read(data, cls, "complaints", env)

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.answer_working_days < self.verify_working_days:
            yield "answer_working_days", "must not be below verify_working_days"


@dataclass(frozen=True, slots=True)
class Probe:
    """An HTTP health check of one business system, standing for it in the listed halls."""

    system: str
    url: str
    halls: tuple[str, ...]
    interval_s: float = 30.0
    timeout_s: float = 5.0
    failures: int = 2  # consecutive failed checks before the system counts as down
    republish_s: float = 300.0  # the current state is published again this often


def _callback_text(text: str) -> str | None:
    try:
        text.format(name="", hall="")
    except (KeyError, IndexError, ValueError) as err:
        return f"only {{name}} and {{hall}}: {err}"
    return None


@dataclass(frozen=True, slots=True)
class ProbeFile:
    """`[outage.probes.SYSTEM]`: an HTTP health check standing for the system in its halls."""

    url: Annotated[str, HTTP_URL, doc("what is fetched")]
    halls: Annotated[
        tuple[Name, ...], Meta(min_length=1), doc("the halls the system serves (hall ids)")
    ]
    interval_s: Annotated[float, Meta(gt=0), doc("seconds between checks")] = 30.0
    timeout_s: Annotated[float, Meta(gt=0), doc("seconds")] = 5.0
    failures: Annotated[
        PositiveInt, doc("consecutive failed checks before the system counts as down")
    ] = 2
    republish_s: Annotated[
        NotNegative, doc("the current state is published again this often, seconds")
    ] = 300.0


_TEXT = "{name}您好：{hall}业务系统已恢复，欢迎您前来办理。"


@dataclass(frozen=True, slots=True)
class OutageFile:
    """`[outage]` as written in the file."""

    callback_text: Annotated[
        str,
        Check(_callback_text, "a text with only {name} and {hall}"),
        doc("the call-back SMS when the system is back"),
    ] = _TEXT
    probes: Annotated[Mapping[Name, ProbeFile], doc("health probes, by system id")] = field(
        default_factory=dict
    )


@dataclass(frozen=True, slots=True)
class OutageSettings:
    """The outage procedure (plan 4.3): call-back SMS text and optional health probes.

    The half hour after which the hall switches to call-back mode is the alert rule's
    `[alerts.system_outage] escalate_after_s`, so the escalation and the switch are one event.
    """

    callback_text: str = _TEXT
    probes: tuple[Probe, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> OutageSettings:
        return cls.build(read(data, OutageFile, "outage", env))

    @classmethod
    def build(cls, f: OutageFile) -> OutageSettings:
        probes = tuple(
            Probe(
                system=system,
                url=p.url,
                halls=p.halls,
                interval_s=p.interval_s,
                timeout_s=p.timeout_s,
                failures=p.failures,
                republish_s=p.republish_s,
            )
            for system, p in f.probes.items()
        )
        return cls(callback_text=f.callback_text, probes=probes)
