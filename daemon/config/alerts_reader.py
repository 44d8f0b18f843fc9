"""The `[alerts]` table as it is written in the file (`AlertsFile`, read by `config.table`), and
how it becomes the `config.alerts` objects the daemon uses: hall tables inherit the defaults
key by key, channels' limits their channel's, and roles must name robots and webhooks that exist.
Secrets come from the file, `HALLWATCH_ALERTS_<PATH>` or `HALLWATCH_ALERTS_<PATH>_FILE`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from typing import Annotated, Any, ClassVar, Literal

from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config.alerts import (
    ALIYUN_ENDPOINT,
    RATE_LIMITS,
    TENCENT_ENDPOINT,
    WECOM_URL,
    AlertmanagerSettings,
    AlertSettings,
    ChannelLimits,
    DegradedRule,
    DeviceRule,
    ForwardSettings,
    HallRules,
    OutboxSettings,
    PeakRule,
    Robot,
    Role,
    RuleSettings,
    SmsSettings,
    SystemRule,
    UncoveredRule,
    Webhook,
    WecomSettings,
)
from hallwatch.daemon.config.table import (
    HTTP_URL,
    SECRET,
    ZONE,
    Name,
    Positive,
    PositiveInt,
    doc,
    read,
)

Url = Annotated[str, HTTP_URL]
Levels = tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class RobotFile:
    """`[alerts.wecom.robots.NAME]`: one WeCom group robot."""

    key: Annotated[str, SECRET, doc("the robot's webhook key")] = field(repr=False)
    url: Annotated[Url | None, doc("its send URL; unset: alerts.wecom.url")] = None


@dataclass(frozen=True, slots=True)
class WecomFile:
    MOVED: ClassVar[Mapping[str, str]] = {
        name: "a robot's limit is alerts.rate_limits.wecom.per_recipient (messages) and "
        "recipient_window_s (seconds)"
        for name in ("per_minute", "window_s")
    }
    url: Annotated[Url, doc("WeCom's robot send URL")] = WECOM_URL
    robots: Annotated[Mapping[Name, RobotFile], doc("the group robots, by name")] = field(
        default_factory=dict
    )
    timeout_s: Annotated[Positive, doc("seconds")] = 10.0
    throttle_pause_s: Annotated[
        float, doc("pause after WeCom says too many (errcode 45009), seconds")
    ] = 60.0


@dataclass(frozen=True, slots=True)
class LimitFile:
    """`[alerts.rate_limits.CHANNEL]`: what is not given is the channel's default."""

    per_recipient: Annotated[PositiveInt | None, doc("messages to one recipient ...")] = None
    recipient_window_s: Annotated[Positive | None, doc("... within this, seconds")] = None
    total: Annotated[PositiveInt | None, doc("messages through the channel ...")] = None
    total_window_s: Annotated[Positive | None, doc("... within this, seconds")] = None


@dataclass(frozen=True, slots=True)
class HallFile:
    """`[alerts.halls.ID]`: one hall's own name, hours, rules and roles; its rule tables
    override the `[alerts]` defaults key by key."""

    name: Annotated[str, doc("the hall's name in messages")] = ""
    open: Annotated[time | None, doc("old place of hours.halls.ID.open, read when unset")] = None
    close: Annotated[time | None, doc("old place of hours.halls.ID.close, read when unset")] = None
    queue_peak: PeakRule = field(default_factory=PeakRule)
    device_offline: DeviceRule = field(default_factory=DeviceRule)
    system_outage: SystemRule = field(default_factory=SystemRule)
    system_degraded: DegradedRule = field(default_factory=DegradedRule)
    service_uncovered: UncoveredRule = field(default_factory=UncoveredRule)
    roles: Annotated[Mapping[Name, Role], doc("the hall's own roles over alerts.roles")] = field(
        default_factory=dict
    )


_OPEN, _CLOSE = time(9, 0), time(17, 0)
_RULES = ("queue_peak", "device_offline", "system_outage", "system_degraded", "service_uncovered")


@dataclass(frozen=True, slots=True)
class AlertsFile:
    """`[alerts]`."""

    MOVED: ClassVar[Mapping[str, str]] = {
        "api_token": "API tokens are in [api.tokens.NAME] with token and scopes; for what "
        'alerts.api_token allowed: scopes = ["alerts:write", "alerts:forward", '
        '"reports:read"] (the token best via HALLWATCH_API_TOKENS_<NAME>_TOKEN_FILE)'
    }
    enabled: Annotated[bool, doc("false: no alert is evaluated or sent")] = True
    timezone: Annotated[str, ZONE, doc("opening hours are in this zone")] = "Asia/Shanghai"
    # The alert rules' hours were set here; [hours] is their one place now (config.hours).
    open: Annotated[time | None, doc("old place of hours.open, read when that is unset")] = None
    close: Annotated[time | None, doc("old place of hours.close, read when that is unset")] = None
    queue_peak: PeakRule = field(default_factory=PeakRule)
    device_offline: DeviceRule = field(default_factory=DeviceRule)
    system_outage: SystemRule = field(default_factory=SystemRule)
    system_degraded: DegradedRule = field(default_factory=DegradedRule)
    service_uncovered: UncoveredRule = field(default_factory=UncoveredRule)
    roles: Annotated[Mapping[Name, Role], doc("who each role reaches")] = field(
        default_factory=dict
    )
    halls: Annotated[Mapping[Name, HallFile], doc("per hall, over the defaults")] = field(
        default_factory=dict
    )
    levels: Annotated[Levels, doc("roles reached at each escalation level")] = (
        RuleSettings().level_roles
    )
    outage_levels: Annotated[Levels, doc("the same for system_outage")] = (
        RuleSettings().outage_roles
    )
    service_names: Annotated[Mapping[str, str], doc("service id -> name in messages")] = field(
        default_factory=dict
    )
    wecom: WecomFile = field(default_factory=WecomFile)
    sms: SmsSettings = field(default_factory=SmsSettings)
    webhooks: Annotated[Mapping[Name, Webhook], doc("generic webhooks, by name")] = field(
        default_factory=dict
    )
    alertmanager: AlertmanagerSettings = field(default_factory=AlertmanagerSettings)
    forward: ForwardSettings = field(default_factory=ForwardSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    rate_limits: Annotated[
        Mapping[Literal["wecom", "sms", "webhook", "alertmanager"], LimitFile],
        doc("per channel, over its defaults"),
    ] = field(default_factory=dict)

    def problems(self) -> Iterator[tuple[str, str]]:
        for name, levels in (("levels", self.levels), ("outage_levels", self.outage_levels)):
            if not levels:
                yield name, "expected a list of lists of role names"
        if self.close is not None and self.close <= (self.open or _OPEN):
            yield "close", "must be after open"


def read_alerts(data: Mapping[str, Any], env: Mapping[str, str]) -> AlertSettings:
    """Build from the `[alerts]` table and the environment; bad values raise ConfigError."""
    return build(read(inherit(data), AlertsFile, "alerts", env))


def inherit(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """A hall's rule tables, key by key over the `[alerts]` ones (before checking, so that a
    bad value names the hall's key)."""
    halls = data.get("halls")
    if not isinstance(halls, dict):
        return data
    merged: dict[str, Any] = {}
    for hall, body in halls.items():
        if isinstance(body, dict):
            body = dict(body)
            for rule in _RULES:
                base, own = data.get(rule, {}), body.get(rule, {})
                if isinstance(base, dict) and isinstance(own, dict) and (base or own):
                    body[rule] = {**base, **own}
        merged[hall] = body
    return {**data, "halls": merged}


def build(f: AlertsFile) -> AlertSettings:
    default = HallRules(
        open=_OPEN if f.open is None else f.open,
        close=_CLOSE if f.close is None else f.close,
        queue_peak=f.queue_peak,
        device_offline=f.device_offline,
        system_outage=f.system_outage,
        system_degraded=f.system_degraded,
        service_uncovered=f.service_uncovered,
    )
    halls = {hall: _hall(h, default, f"alerts.halls.{hall}") for hall, h in f.halls.items()}
    s = AlertSettings(
        enabled=f.enabled,
        rules=RuleSettings(
            timezone=f.timezone,
            default=default,
            halls=halls,
            level_roles=f.levels,
            outage_roles=f.outage_levels,
        ),
        roles=dict(f.roles),
        service_names=dict(f.service_names),
        wecom=WecomSettings(
            robots={
                name: Robot(url=(r.url or f.wecom.url).rstrip("?"), key=r.key)
                for name, r in f.wecom.robots.items()
            },
            timeout_s=f.wecom.timeout_s,
            throttle_pause_s=f.wecom.throttle_pause_s,
        ),
        sms=_sms(f.sms),
        webhooks={name: replace(w, url=w.url.rstrip("?")) for name, w in f.webhooks.items()},
        alertmanager=replace(
            f.alertmanager,
            url=f.alertmanager.url.rstrip("?").rstrip("/"),
        ),
        forward=f.forward,
        outbox=f.outbox,
        rate_limits=_limits(f.rate_limits),
    )
    cross_check(s)
    return s


def _hall(h: HallFile, default: HallRules, key: str) -> HallRules:
    opens, closes = h.open or default.open, h.close or default.close
    if closes <= opens:
        raise ConfigError(f"{key}.close", "must be after open")
    return HallRules(
        name=h.name,
        open=opens,
        close=closes,
        queue_peak=h.queue_peak,
        device_offline=h.device_offline,
        system_outage=h.system_outage,
        system_degraded=h.system_degraded,
        service_uncovered=h.service_uncovered,
        roles=dict(h.roles),
    )


def _sms(s: SmsSettings) -> SmsSettings:
    endpoint = s.endpoint or {"aliyun": ALIYUN_ENDPOINT, "tencent": TENCENT_ENDPOINT}.get(
        s.provider, ""
    )
    region = s.region or ("ap-guangzhou" if s.provider == "tencent" else "cn-hangzhou")
    return replace(s, endpoint=endpoint.rstrip("?"), region=region)


def _limits(given: Mapping[Any, LimitFile]) -> dict[str, ChannelLimits]:
    out = dict(RATE_LIMITS)
    for channel, lim in given.items():
        base = RATE_LIMITS[channel]
        out[channel] = merged = ChannelLimits(
            per_recipient=lim.per_recipient or base.per_recipient,
            recipient_window_s=lim.recipient_window_s or base.recipient_window_s,
            total=lim.total or base.total,
            total_window_s=lim.total_window_s or base.total_window_s,
        )
        if channel == "wecom" and (merged.per_recipient > 20 or merged.recipient_window_s < 60):
            raise ConfigError(
                "alerts.rate_limits.wecom.per_recipient", "WeCom allows a robot at most 20 a minute"
            )
    return out


def cross_check(s: AlertSettings) -> None:
    """Roles name robots and webhooks that exist, and SMS only with a provider."""
    every = [("alerts.roles", s.roles)] + [
        (f"alerts.halls.{h}.roles", r.roles) for h, r in s.rules.halls.items()
    ]
    for prefix, roles in every:
        for name, role in roles.items():
            for robot in role.wecom:
                if robot not in s.wecom.robots:
                    raise ConfigError(f"{prefix}.{name}.wecom", f"no robot {robot!r}")
            for hook in role.webhooks:
                if hook not in s.webhooks:
                    raise ConfigError(f"{prefix}.{name}.webhooks", f"no webhook {hook!r}")
            if role.sms and s.sms.provider == "none":
                raise ConfigError(f"{prefix}.{name}.sms", "alerts.sms.provider is none")
