"""The `[alerts]` table as it is written in the file (`AlertsFile`, read by `config.table`), and
how it becomes the `config.alerts` objects the daemon uses: hall tables inherit the defaults
key by key, channels' limits their channel's, and roles must name robots and webhooks that exist.
Secrets come from the file, `HALLWATCH_ALERTS_<PATH>` or `HALLWATCH_ALERTS_<PATH>_FILE`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
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
    Webhook,
    WecomSettings,
)
from hallwatch.daemon.config.table import (
    SECRET,
    ZONE,
    Check,
    Name,
    Positive,
    PositiveInt,
    doc,
    read,
)


def _http_url(value: str) -> str | None:
    """None for an http(s) URL with a host; else a message showing only scheme and host (a URL
    may hold a key in its query)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
    except ValueError:
        return "must be an http(s) URL, got '?'"
    if parts.scheme in ("http", "https") and parts.hostname:
        return None
    return f"must be an http(s) URL, got {parts.scheme + '://' + str(parts.hostname)!r}"


URL = Check(_http_url, "an http(s) URL")
Url = Annotated[str, URL]
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


Provider = Literal["none", "generic", "aliyun", "tencent"]
_NEEDS = {
    "aliyun": ("access_key_id", "access_key_secret", "sign_name", "template_code"),
    "tencent": ("secret_id", "secret_key", "sdk_app_id", "sign_name", "template_id"),
}


@dataclass(frozen=True, slots=True)
class SmsFile:
    """`[alerts.sms]`: one SMS provider for every role's numbers."""

    provider: Annotated[Provider, doc("the SMS gateway; none: no SMS")] = "none"
    endpoint: Annotated[str, doc("its URL; empty: the provider's own")] = ""
    timeout_s: Annotated[Positive, doc("seconds")] = 10.0
    access_key_id: Annotated[str, SECRET, doc("aliyun")] = field(default="", repr=False)
    access_key_secret: Annotated[str, SECRET, doc("aliyun")] = field(default="", repr=False)
    region: Annotated[str | None, doc("unset: cn-hangzhou (aliyun), ap-guangzhou (tencent)")] = None
    sign_name: Annotated[str, doc("the approved signature (aliyun, tencent)")] = ""
    template_code: Annotated[str, doc("aliyun's template")] = ""
    secret_id: Annotated[str, SECRET, doc("tencent")] = field(default="", repr=False)
    secret_key: Annotated[str, SECRET, doc("tencent")] = field(default="", repr=False)
    sdk_app_id: Annotated[str, doc("tencent")] = ""
    template_id: Annotated[str, doc("tencent's template")] = ""
    token: Annotated[str, SECRET, doc("the generic gateway's Bearer token")] = field(
        default="", repr=False
    )

    def problems(self) -> Iterator[tuple[str, str]]:
        default = {"aliyun": ALIYUN_ENDPOINT, "tencent": TENCENT_ENDPOINT}.get(self.provider, "")
        problem = _http_url(self.endpoint or default)
        if self.provider != "none" and problem:
            yield "endpoint", problem
        for name in _NEEDS.get(self.provider, ()):
            if not getattr(self, name):
                yield name, f"required for provider {self.provider}"


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
    open: Annotated[time | None, doc("unset: alerts.open")] = None
    close: Annotated[time | None, doc("unset: alerts.close")] = None
    queue_peak: PeakRule = field(default_factory=PeakRule)
    device_offline: DeviceRule = field(default_factory=DeviceRule)
    system_outage: SystemRule = field(default_factory=SystemRule)
    roles: Annotated[Mapping[Name, Role], doc("the hall's own roles over alerts.roles")] = field(
        default_factory=dict
    )


_RULES = ("queue_peak", "device_offline", "system_outage")


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
    open: Annotated[time, doc("opening time")] = time(9, 0)
    close: Annotated[time, doc("closing time")] = time(17, 0)
    queue_peak: PeakRule = field(default_factory=PeakRule)
    device_offline: DeviceRule = field(default_factory=DeviceRule)
    system_outage: SystemRule = field(default_factory=SystemRule)
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
    sms: SmsFile = field(default_factory=SmsFile)
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
        if self.close <= self.open:
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
        open=f.open,
        close=f.close,
        queue_peak=f.queue_peak,
        device_offline=f.device_offline,
        system_outage=f.system_outage,
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
        webhooks={
            name: Webhook(
                url=_url(w.url, f"alerts.webhooks.{name}.url"), token=w.token, timeout_s=w.timeout_s
            )
            for name, w in f.webhooks.items()
        },
        alertmanager=AlertmanagerSettings(
            url=_url(f.alertmanager.url, "alerts.alertmanager.url", empty_ok=True).rstrip("/"),
            token=f.alertmanager.token,
            resend_s=f.alertmanager.resend_s,
            generator_url=f.alertmanager.generator_url,
            timeout_s=f.alertmanager.timeout_s,
        ),
        forward=f.forward,
        outbox=f.outbox,
        rate_limits=_limits(f.rate_limits),
    )
    cross_check(s)
    return s


def _url(value: str, key: str, *, empty_ok: bool = False) -> str:
    problem = None if (empty_ok and not value) else _http_url(value)
    if problem:
        raise ConfigError(key, problem)
    return value.rstrip("?")


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
        roles=dict(h.roles),
    )


def _sms(s: SmsFile) -> SmsSettings:
    endpoint = s.endpoint or {"aliyun": ALIYUN_ENDPOINT, "tencent": TENCENT_ENDPOINT}.get(
        s.provider, ""
    )
    region = (
        s.region
        if s.region is not None
        else ("ap-guangzhou" if s.provider == "tencent" else "cn-hangzhou")
    )
    return SmsSettings(
        provider=s.provider,
        endpoint=endpoint.rstrip("?") if s.provider != "none" else endpoint,
        timeout_s=s.timeout_s,
        access_key_id=s.access_key_id,
        access_key_secret=s.access_key_secret,
        region=region,
        sign_name=s.sign_name,
        template_code=s.template_code,
        secret_id=s.secret_id,
        secret_key=s.secret_key,
        sdk_app_id=s.sdk_app_id,
        template_id=s.template_id,
        token=s.token,
    )


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
