"""The `[alerts]` section: rules, opening hours, routing, channels. Validated once at start.

`config.alerts_reader.read_alerts(data, env)` takes the `[alerts]` table of the TOML file and the
environment. Secrets (robot keys, SMS keys, tokens) may come from the file, from
`HALLWATCH_ALERTS_<PATH>` or from a file named by `HALLWATCH_ALERTS_<PATH>_FILE`, where PATH
is the key's path upper-cased with dots and dashes as underscores
(`alerts.wecom.robots.supervisor.key` -> `HALLWATCH_ALERTS_WECOM_ROBOTS_SUPERVISOR_KEY`).
Secret fields are left out of every repr, so printing the settings never leaks them. This
module holds what the settings are; `config.alerts_reader` reads and checks the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Annotated, Literal, get_args

from hallwatch.daemon.config.table import (
    HTTP_URL,
    SECRET,
    Check,
    NotNegative,
    Positive,
    PositiveInt,
    doc,
    http_url_problem,
)
from hallwatch.daemon.core.hours import Lunch
from msgspec import Meta

ALERTS = ("queue_peak", "device_offline", "system_outage", "system_degraded", "service_uncovered")
# What a role may receive: the alerts, plus the notices of complaints and the calendar check.
Kind = Literal[
    "queue_peak",
    "device_offline",
    "system_outage",
    "system_degraded",
    "service_uncovered",
    "complaint",
    "calendar",
]
KINDS: tuple[str, ...] = get_args(Kind)
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
PHONE = re.compile(r"\+?[0-9]{5,15}")
Phone = Annotated[str, Meta(pattern=rf"\A{PHONE.pattern}\Z")]
SMS_PROVIDERS = ("none", "generic", "aliyun", "tencent")
WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
ALIYUN_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
TENCENT_ENDPOINT = "https://sms.tencentcloudapi.com/"


@dataclass(frozen=True, slots=True)
class PeakRule:
    """queue_peak: the plan's 20 people or 20 minutes, with a `for` and a lower clear mark."""

    headcount: Annotated[PositiveInt, doc("people waiting that make a peak")] = 20
    wait_s: Annotated[NotNegative, doc("a longest wait that makes a peak, seconds")] = 1200.0
    clear_headcount: Annotated[PositiveInt, doc("the peak clears below this many people")] = 15
    clear_wait_s: Annotated[NotNegative, doc("... and below this wait, seconds")] = 900.0
    for_s: Annotated[NotNegative, doc("a peak must last this long to alert, seconds")] = 60.0
    clear_for_s: Annotated[NotNegative, doc("below the clear marks this long, seconds")] = 120.0
    escalate_after_s: Annotated[
        NotNegative, doc("firing this long escalates to the next level, seconds")
    ] = 1800.0
    escalate_headcount: Annotated[PositiveInt, doc("this many people escalate at once")] = 40
    escalate_wait_s: Annotated[NotNegative, doc("this wait escalates at once, seconds")] = 2400.0
    repeat_s: Annotated[NotNegative, doc("a firing alert is sent again this often, seconds")] = (
        900.0
    )
    relapse_s: Annotated[
        NotNegative, doc("a new crossing this soon after a clear continues the episode, seconds")
    ] = 1800.0

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.clear_headcount > self.headcount:
            yield "clear_headcount", "must not exceed headcount"
        if self.clear_wait_s > self.wait_s:
            yield "clear_wait_s", "must not exceed wait_s"


@dataclass(frozen=True, slots=True)
class DeviceRule:
    """device_offline: down (no heartbeat, or `offline`) for `after_s`."""

    after_s: Annotated[NotNegative, doc("down this long alerts, seconds")] = 120.0
    clear_for_s: Annotated[NotNegative, doc("back this long clears, seconds")] = 30.0
    escalate_after_s: Annotated[NotNegative, doc("firing this long escalates, seconds")] = 1800.0
    repeat_s: Annotated[NotNegative, doc("sent again this often, seconds")] = 900.0
    opening_hours_only: Annotated[
        bool, doc("only within opening hours (machines are switched off at night)")
    ] = True


@dataclass(frozen=True, slots=True)
class SystemRule:
    """system_outage (plan 4.3): a business system `down` alerts the information centre at once;
    not back within `escalate_after_s` (the plan's half hour) it escalates and the hall switches
    to call-back registration."""

    after_s: Annotated[NotNegative, doc("down this long alerts, seconds")] = 0.0
    clear_for_s: Annotated[NotNegative, doc("back this long clears, seconds")] = 0.0
    escalate_after_s: Annotated[
        NotNegative, doc("not back within this: escalate, call-back mode, seconds")
    ] = 1800.0
    repeat_s: Annotated[NotNegative, doc("sent again this often, seconds")] = 900.0
    opening_hours_only: Annotated[bool, doc("only within opening hours")] = True


@dataclass(frozen=True, slots=True)
class DegradedRule:
    """system_degraded (plan 4.3, 信息网络不畅): a business system reported `degraded` for
    `after_s` alerts the information centre and the supervisor; work goes on, slower, so it
    escalates to the director only after `escalate_after_s`."""

    after_s: Annotated[NotNegative, doc("degraded this long alerts, seconds")] = 60.0
    clear_for_s: Annotated[NotNegative, doc("up again this long clears, seconds")] = 60.0
    escalate_after_s: Annotated[
        NotNegative, doc("still degraded after this: escalate to the next level, seconds")
    ] = 7200.0
    repeat_s: Annotated[NotNegative, doc("sent again this often, seconds")] = 1800.0
    opening_hours_only: Annotated[bool, doc("only within opening hours")] = True


@dataclass(frozen=True, slots=True)
class UncoveredRule:
    """service_uncovered: customers of a service wait and no open window serves it (午间轮班:
    the service stays covered) for `after_s`; a window for it opening, or nobody waiting, clears."""

    after_s: Annotated[NotNegative, doc("customers waiting with no window this long, seconds")] = (
        600.0
    )
    clear_for_s: Annotated[NotNegative, doc("covered again this long clears, seconds")] = 0.0
    escalate_after_s: Annotated[
        NotNegative, doc("firing this long escalates to the next level, seconds")
    ] = 1800.0
    repeat_s: Annotated[NotNegative, doc("sent again this often, seconds")] = 900.0
    opening_hours_only: Annotated[bool, doc("only within opening hours")] = True


@dataclass(frozen=True, slots=True)
class Role:
    """Who a role reaches: WeCom robots (with @mentions), SMS numbers, webhooks."""

    wecom: Annotated[tuple[str, ...], doc("WeCom robots (names in alerts.wecom.robots)")] = ()
    mention_mobiles: Annotated[tuple[Phone, ...], doc("mobiles to @mention in WeCom")] = ()
    mention_userids: Annotated[tuple[str, ...], doc("WeCom user ids to @mention")] = ()
    sms: Annotated[tuple[Phone, ...], doc("phone numbers to text")] = ()
    webhooks: Annotated[tuple[str, ...], doc("webhooks (names in alerts.webhooks)")] = ()
    alerts: Annotated[tuple[Kind, ...], doc("which alerts and notices this role receives")] = KINDS  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class HallRules:
    """One hall's rules; its hours and lunch rotation come from `[hours]` (`config.hours`)."""

    name: str = ""
    open: time = time(9, 0)
    close: time = time(17, 0)
    lunch: tuple[Lunch, ...] = ()
    queue_peak: PeakRule = PeakRule()
    device_offline: DeviceRule = DeviceRule()
    system_outage: SystemRule = SystemRule()
    system_degraded: DegradedRule = DegradedRule()
    service_uncovered: UncoveredRule = UncoveredRule()
    roles: Mapping[str, Role] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """What the pure rule engine needs."""

    timezone: str = "Asia/Shanghai"
    default: HallRules = HallRules()
    halls: Mapping[str, HallRules] = field(default_factory=dict)
    level_roles: tuple[tuple[str, ...], ...] = (("supervisor",), ("supervisor", "director"))
    # system_outage goes to the information centre first (plan 4.3 step 1), with the hall's
    # supervisor, the department head responsible for the outage procedure.
    outage_roles: tuple[tuple[str, ...], ...] = (
        ("info_centre", "supervisor"),
        ("info_centre", "supervisor", "director"),
    )

    def for_hall(self, hall: str) -> HallRules:
        return self.halls.get(hall, self.default)

    def roles_for(self, level: int, alert: str = "") -> tuple[str, ...]:
        system = alert in ("system_outage", "system_degraded")
        levels = self.outage_roles if system else self.level_roles
        return levels[max(0, min(level, len(levels)) - 1)]


@dataclass(frozen=True, slots=True)
class Robot:
    url: str
    key: str = field(repr=False)

    def endpoint(self) -> str:
        """The full webhook URL, key included: a secret, never log it."""
        return f"{self.url}?key={self.key}"


@dataclass(frozen=True, slots=True)
class WecomSettings:
    robots: Mapping[str, Robot] = field(default_factory=dict)
    timeout_s: float = 10.0
    throttle_pause_s: float = 60.0  # after errcode 45009


_NEEDS = {
    "aliyun": ("access_key_id", "access_key_secret", "sign_name", "template_code"),
    "tencent": ("secret_id", "secret_key", "sdk_app_id", "sign_name", "template_id"),
}


@dataclass(frozen=True, slots=True)
class SmsSettings:
    """`[alerts.sms]`: one SMS provider for every role's numbers."""

    provider: Annotated[
        Literal["none", "generic", "aliyun", "tencent"], doc("the SMS gateway; none: no SMS")
    ] = "none"
    endpoint: Annotated[str, doc("its URL; empty: the provider's own")] = ""
    timeout_s: Annotated[Positive, doc("seconds")] = 10.0
    # aliyun
    access_key_id: Annotated[str, SECRET, doc("aliyun")] = ""
    access_key_secret: Annotated[str, SECRET, doc("aliyun")] = field(default="", repr=False)
    region: Annotated[str, doc("empty: cn-hangzhou (aliyun), ap-guangzhou (tencent)")] = ""
    sign_name: Annotated[str, doc("the approved signature (aliyun, tencent)")] = ""
    template_code: Annotated[str, doc("aliyun's template")] = ""
    # tencent
    secret_id: Annotated[str, SECRET, doc("tencent")] = ""
    secret_key: Annotated[str, SECRET, doc("tencent")] = field(default="", repr=False)
    sdk_app_id: Annotated[str, doc("tencent")] = ""
    template_id: Annotated[str, doc("tencent's template")] = ""
    # generic gateway
    token: Annotated[str, SECRET, doc("the generic gateway's Bearer token")] = field(
        default="", repr=False
    )

    def problems(self) -> Iterator[tuple[str, str]]:
        default = {"aliyun": ALIYUN_ENDPOINT, "tencent": TENCENT_ENDPOINT}.get(self.provider, "")
        problem = http_url_problem(self.endpoint or default)
        if self.provider != "none" and problem:
            yield "endpoint", problem
        for name in _NEEDS.get(self.provider, ()):
            if not getattr(self, name):
                yield name, f"required for provider {self.provider}"


@dataclass(frozen=True, slots=True)
class Webhook:
    url: Annotated[str, HTTP_URL, doc("where to POST the alert as JSON")]
    token: Annotated[str, SECRET, doc("sent as Authorization: Bearer")] = field(
        default="", repr=False
    )
    timeout_s: Annotated[Positive, doc("seconds")] = 10.0


def _optional_url(value: str) -> str | None:
    return http_url_problem(value) if value else None


OPTIONAL_URL = Check(_optional_url, "an http(s) URL or empty")


@dataclass(frozen=True, slots=True)
class AlertmanagerSettings:
    url: Annotated[
        str,
        OPTIONAL_URL,
        doc("e.g. http://127.0.0.1:9093; empty: alerts are not pushed"),
    ] = ""
    token: Annotated[str, SECRET, doc("Bearer token for Alertmanager")] = field(
        default="", repr=False
    )
    resend_s: Annotated[Positive, doc("firing alerts are pushed again this often, seconds")] = 60.0
    generator_url: Annotated[str, doc("the link Alertmanager shows for an alert")] = ""
    timeout_s: Annotated[Positive, doc("seconds")] = 10.0


@dataclass(frozen=True, slots=True)
class ForwardSettings:
    """The Alertmanager webhook receiver: which roles get what Alertmanager sends us."""

    roles: Annotated[tuple[str, ...], doc("roles that receive what Alertmanager sends")] = (
        "supervisor",
    )
    dedupe_s: Annotated[Positive, doc("the same alert again within this is dropped")] = 300.0
    include_own: Annotated[
        bool, doc("forward alerts labelled source=hallwatch too (they went out directly)")
    ] = False
    max_alerts: Annotated[
        PositiveInt, doc("alerts in one webhook request; more: 413 (Alertmanager's max_alerts)")
    ] = 100


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """At most `per_recipient` messages to one recipient (robot, phone number, webhook) in
    `recipient_window_s`, and `total` through the channel in `total_window_s`. A message over
    either waits in the outbox until it fits; nothing is dropped."""

    per_recipient: int
    recipient_window_s: float
    total: int
    total_window_s: float


#: Defaults per channel. WeCom: a robot takes 20 messages a minute, counted as they arrive, so
#: 2 s more for the network's jitter. SMS costs money and wakes people: 20 an hour to one
#: number, 300 an hour in all (an outage's call-back SMS to customers fit).
RATE_LIMITS: Mapping[str, ChannelLimits] = {
    "wecom": ChannelLimits(20, 62.0, 100, 60.0),
    "sms": ChannelLimits(20, 3600.0, 300, 3600.0),
    "webhook": ChannelLimits(60, 60.0, 300, 60.0),
    "alertmanager": ChannelLimits(300, 60.0, 300, 60.0),
}


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    retry_base_s: Annotated[NotNegative, doc("first retry of a failed send, seconds")] = 5.0
    retry_cap_s: Annotated[NotNegative, doc("retries back off up to this, seconds")] = 600.0
    dead_after_s: Annotated[NotNegative, doc("unsent this long: a dead letter, seconds")] = (
        6 * 3600.0
    )
    keep_sent_s: Annotated[NotNegative, doc("sent messages are kept this long, seconds")] = (
        7 * 86400.0
    )


@dataclass(frozen=True, slots=True)
class AlertSettings:
    enabled: bool = True
    rules: RuleSettings = RuleSettings()
    roles: Mapping[str, Role] = field(default_factory=dict)
    service_names: Mapping[str, str] = field(default_factory=dict)
    wecom: WecomSettings = WecomSettings()
    sms: SmsSettings = SmsSettings()
    webhooks: Mapping[str, Webhook] = field(default_factory=dict)
    alertmanager: AlertmanagerSettings = AlertmanagerSettings()
    forward: ForwardSettings = ForwardSettings()
    outbox: OutboxSettings = OutboxSettings()
    rate_limits: Mapping[str, ChannelLimits] = field(default_factory=lambda: dict(RATE_LIMITS))

    def roles_in(self, hall: str) -> Mapping[str, Role]:
        """The hall's own roles where it defines them, else the defaults."""
        own = self.rules.for_hall(hall).roles
        return {**self.roles, **own}
