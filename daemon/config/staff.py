"""The `[complaints]` and `[outage]` sections: complaint deadlines, the outage call-back register
and the HTTP health probes. Validated once at start. (The staff API's tokens are in `[api]`:
`hallwatch.daemon.config.api`.)

Each `from_mapping(data, env)` takes its TOML table and the environment; a bad value raises
`ConfigError` naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hallwatch.daemon.base.errors import ConfigError

NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class ComplaintSettings:
    """Deadlines of the complaint procedure (plan 4.2), in working days, and who hears of them."""

    verify_working_days: int = 2  # receipt -> verified with a proposed answer
    answer_working_days: int = 2  # receipt -> answered to the complainant
    follow_up_working_days: int = 5  # answered -> follow-up call done
    remind_before_s: float = 4 * 3600.0  # remind this long before a deadline ("due soon")
    remind_roles: tuple[str, ...] = ("supervisor",)  # the department head
    escalate_roles: tuple[str, ...] = ("supervisor", "director")  # overdue or serious
    default_department: str = "服务大厅"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> ComplaintSettings:
        p = "complaints"
        base = cls()
        _known(data, set(cls.__dataclass_fields__), p)
        s = cls(
            verify_working_days=_int(data, "verify_working_days", p, base.verify_working_days),
            answer_working_days=_int(data, "answer_working_days", p, base.answer_working_days),
            follow_up_working_days=_int(
                data, "follow_up_working_days", p, base.follow_up_working_days
            ),
            remind_before_s=_num(data, "remind_before_s", p, base.remind_before_s),
            remind_roles=_strs(data, "remind_roles", f"{p}.remind_roles", base.remind_roles),
            escalate_roles=_strs(
                data, "escalate_roles", f"{p}.escalate_roles", base.escalate_roles
            ),
            default_department=_str(data, "default_department", p, base.default_department),
        )
        if s.answer_working_days < s.verify_working_days:
            raise ConfigError(f"{p}.answer_working_days", "must not be below verify_working_days")
        return s


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


@dataclass(frozen=True, slots=True)
class OutageSettings:
    """The outage procedure (plan 4.3): call-back SMS text and optional health probes.

    The half hour after which the hall switches to call-back mode is the alert rule's
    `[alerts.system_outage] escalate_after_s`, so the escalation and the switch are one event.
    """

    callback_text: str = "{name}您好：{hall}业务系统已恢复，欢迎您前来办理。"
    probes: tuple[Probe, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> OutageSettings:
        p = "outage"
        _known(data, {"callback_text", "probes"}, p)
        text = _str(data, "callback_text", p, cls().callback_text)
        try:
            text.format(name="", hall="")
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(f"{p}.callback_text", f"only {{name}} and {{hall}}: {err}") from None
        probes = []
        for system, body in _table(data, "probes", f"{p}.probes").items():
            key = f"{p}.probes.{system}"
            if not NAME.fullmatch(system) or not isinstance(body, dict):
                raise ConfigError(key, "must be a table named like the system [A-Za-z0-9_.-]")
            _known(
                body, {"url", "halls", "interval_s", "timeout_s", "failures", "republish_s"}, key
            )
            url = _str(body, "url", key, "")
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"{key}.url", "must be an http(s) URL")
            halls = _strs(body, "halls", f"{key}.halls", ())
            if not halls or not all(NAME.fullmatch(h) for h in halls):
                raise ConfigError(f"{key}.halls", "a non-empty list of hall ids")
            probe = Probe(
                system=system,
                url=url,
                halls=halls,
                interval_s=_num(body, "interval_s", key, 30.0),
                timeout_s=_num(body, "timeout_s", key, 5.0),
                failures=_int(body, "failures", key, 2),
                republish_s=_num(body, "republish_s", key, 300.0),
            )
            if probe.interval_s <= 0 or probe.timeout_s <= 0:
                raise ConfigError(f"{key}.interval_s", "interval_s and timeout_s must be > 0")
            probes.append(probe)
        return cls(callback_text=text, probes=tuple(probes))


# --- readers ------------------------------------------------------------------------------


def _known(data: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    for k in data:
        if k not in allowed:
            raise ConfigError(f"{prefix}.{k}", "unknown key")


def _table(data: Mapping[str, Any], name: str, key: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(key, "must be a table")
    return value


def _num(data: Mapping[str, Any], name: str, prefix: str, default: float) -> float:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{prefix}.{name}", f"expected a non-negative number, got {value!r}")
    return float(value)


def _int(data: Mapping[str, Any], name: str, prefix: str, default: int) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{prefix}.{name}", f"expected a positive integer, got {value!r}")
    return value


def _str(data: Mapping[str, Any], name: str, prefix: str, default: str) -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise ConfigError(f"{prefix}.{name}", f"expected a string, got {value!r}")
    return value


def _strs(
    data: Mapping[str, Any], name: str, key: str, default: tuple[str, ...]
) -> tuple[str, ...]:
    value = data.get(name, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(key, f"expected a list of strings, got {value!r}")
    return tuple(value)
