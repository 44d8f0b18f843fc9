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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time

ALERTS = ("queue_peak", "device_offline", "system_outage", "service_uncovered")
# What a role may receive: the alerts, plus the notices of complaints and the calendar check.
KINDS = (*ALERTS, "complaint", "calendar")
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
PHONE = re.compile(r"\+?[0-9]{5,15}")
SMS_PROVIDERS = ("none", "generic", "aliyun", "tencent")
WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
ALIYUN_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
TENCENT_ENDPOINT = "https://sms.tencentcloudapi.com/"


@dataclass(frozen=True, slots=True)
class PeakRule:
    """queue_peak: the plan's 20 people or 20 minutes, with a `for` and a lower clear mark."""

    headcount: int = 20
    wait_s: float = 1200.0
    clear_headcount: int = 15
    clear_wait_s: float = 900.0
    for_s: float = 60.0
    clear_for_s: float = 120.0
    escalate_after_s: float = 1800.0
    escalate_headcount: int = 40
    escalate_wait_s: float = 2400.0
    repeat_s: float = 900.0
    relapse_s: float = 1800.0  # a new crossing this soon after a clear continues the episode


@dataclass(frozen=True, slots=True)
class DeviceRule:
    """device_offline: down (no heartbeat, or `offline`) for `after_s`."""

    after_s: float = 120.0
    clear_for_s: float = 30.0
    escalate_after_s: float = 1800.0
    repeat_s: float = 900.0
    opening_hours_only: bool = True  # machines are switched off at night


@dataclass(frozen=True, slots=True)
class SystemRule:
    """system_outage (plan 4.3): a business system `down` alerts the information centre at once;
    not back within `escalate_after_s` (the plan's half hour) it escalates and the hall switches
    to call-back registration."""

    after_s: float = 0.0
    clear_for_s: float = 0.0
    escalate_after_s: float = 1800.0
    repeat_s: float = 900.0
    opening_hours_only: bool = True


@dataclass(frozen=True, slots=True)
class UncoveredRule:
    """service_uncovered: customers of a service wait and no open window serves it (午间轮班:
    the service stays covered) for `after_s`; a window for it opening, or nobody waiting, clears."""

    after_s: float = 600.0
    clear_for_s: float = 0.0
    escalate_after_s: float = 1800.0
    repeat_s: float = 900.0
    opening_hours_only: bool = True


@dataclass(frozen=True, slots=True)
class Role:
    """Who a role reaches: WeCom robots (with @mentions), SMS numbers, webhooks."""

    wecom: tuple[str, ...] = ()
    mention_mobiles: tuple[str, ...] = ()
    mention_userids: tuple[str, ...] = ()
    sms: tuple[str, ...] = ()
    webhooks: tuple[str, ...] = ()
    alerts: tuple[str, ...] = KINDS  # which alerts and notices this role receives


@dataclass(frozen=True, slots=True)
class HallRules:
    name: str = ""
    open: time = time(9, 0)
    close: time = time(17, 0)
    queue_peak: PeakRule = PeakRule()
    device_offline: DeviceRule = DeviceRule()
    system_outage: SystemRule = SystemRule()
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
        levels = self.outage_roles if alert == "system_outage" else self.level_roles
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


@dataclass(frozen=True, slots=True)
class SmsSettings:
    provider: str = "none"
    endpoint: str = ""
    timeout_s: float = 10.0
    # aliyun
    access_key_id: str = ""
    access_key_secret: str = field(default="", repr=False)
    region: str = ""
    sign_name: str = ""
    template_code: str = ""
    # tencent
    secret_id: str = ""
    secret_key: str = field(default="", repr=False)
    sdk_app_id: str = ""
    template_id: str = ""
    # generic gateway
    token: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    token: str = field(default="", repr=False)
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class AlertmanagerSettings:
    url: str = ""  # e.g. http://127.0.0.1:9093 ; empty: not used
    token: str = field(default="", repr=False)
    resend_s: float = 60.0
    generator_url: str = ""
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class ForwardSettings:
    """The Alertmanager webhook receiver: which roles get what Alertmanager sends us."""

    roles: tuple[str, ...] = ("supervisor",)
    dedupe_s: float = 300.0
    include_own: bool = False  # alerts labelled source=hallwatch already went out directly
    max_alerts: int = 100  # alerts in one webhook request; more: 413 (Alertmanager: max_alerts)


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
    retry_base_s: float = 5.0
    retry_cap_s: float = 600.0
    dead_after_s: float = 6 * 3600.0
    keep_sent_s: float = 7 * 86400.0


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
