"""Reading the `[alerts]` table into `config.alerts` objects, each bad value a ConfigError
naming its key. Secrets come from the file or the environment (`base.errors.read_secret`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hallwatch.daemon.base.errors import ConfigError, env_name
from hallwatch.daemon.config.alerts import (
    ALIYUN_ENDPOINT,
    KINDS,
    NAME,
    PHONE,
    RATE_LIMITS,
    SMS_PROVIDERS,
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
    UncoveredRule,
    Webhook,
    WecomSettings,
)
from hallwatch.daemon.config.table import TableReader

_RULES = ("queue_peak", "device_offline", "system_outage", "service_uncovered")  # rule tables


def read_alerts(data: Mapping[str, Any], env: Mapping[str, str]) -> AlertSettings:
    """Build from the `[alerts]` table and the environment; bad values raise ConfigError."""
    return Reader(env).settings(dict(data))


class Reader(TableReader):
    """Reads and checks the `[alerts]` table, key by key, naming the key of any bad value."""

    # --- sections ---------------------------------------------------------------------------

    def rule(self, cls: type, data: Mapping[str, Any], base: Any, prefix: str) -> Any:
        self.known(data, {f.name for f in fields(cls)}, prefix)
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = f"{prefix}.{f.name}"
            default = getattr(base, f.name)
            if isinstance(default, bool):
                values[f.name] = self.bool_(data, f.name, key, default)
            elif isinstance(default, int):
                values[f.name] = self.int_(data, f.name, key, default)
            else:
                values[f.name] = self.num(data, f.name, key, default)
        obj = cls(**values)
        if isinstance(obj, PeakRule):
            if obj.clear_headcount > obj.headcount:
                raise ConfigError(f"{prefix}.clear_headcount", "must not exceed headcount")
            if obj.clear_wait_s > obj.wait_s:
                raise ConfigError(f"{prefix}.clear_wait_s", "must not exceed wait_s")
        return obj

    def role(self, data: Mapping[str, Any], prefix: str) -> Role:
        allowed = {f.name for f in fields(Role)}
        self.known(data, allowed, prefix)
        role = Role(
            wecom=self.strs(data, "wecom", f"{prefix}.wecom"),
            mention_mobiles=self.strs(data, "mention_mobiles", f"{prefix}.mention_mobiles"),
            mention_userids=self.strs(data, "mention_userids", f"{prefix}.mention_userids"),
            sms=self.strs(data, "sms", f"{prefix}.sms"),
            webhooks=self.strs(data, "webhooks", f"{prefix}.webhooks"),
            alerts=self.strs(data, "alerts", f"{prefix}.alerts", KINDS),
        )
        for name in ("mention_mobiles", "sms"):
            for phone in getattr(role, name):
                if not PHONE.fullmatch(phone):
                    raise ConfigError(f"{prefix}.{name}", "not a phone number (digits, +)")
        for a in role.alerts:
            if a not in KINDS:
                raise ConfigError(f"{prefix}.alerts", f"unknown alert {a!r}")
        return role

    def roles(self, data: Mapping[str, Any], prefix: str) -> dict[str, Role]:
        out = {}
        for name, body in data.items():
            key = f"{prefix}.{name}"
            if not NAME.fullmatch(name):
                raise ConfigError(key, "role names match [A-Za-z0-9_.-]{1,64}")
            if not isinstance(body, dict):
                raise ConfigError(key, "must be a table")
            out[name] = self.role(body, key)
        return out

    def hall_rules(self, data: Mapping[str, Any], base: HallRules, prefix: str) -> HallRules:
        rules: dict[str, Any] = {}
        for name, cls in (
            ("queue_peak", PeakRule),
            ("device_offline", DeviceRule),
            ("system_outage", SystemRule),
            ("service_uncovered", UncoveredRule),
        ):
            rules[name] = self.rule(
                cls,
                self.table(data, name, f"{prefix}.{name}"),
                getattr(base, name),
                prefix + "." + name,
            )
        opens = self.clock(data, "open", f"{prefix}.open", base.open)
        closes = self.clock(data, "close", f"{prefix}.close", base.close)
        if closes <= opens:
            raise ConfigError(f"{prefix}.close", "must be after open")
        return HallRules(
            name=self.str_(data, "name", f"{prefix}.name", base.name),
            open=opens,
            close=closes,
            roles=self.roles(self.table(data, "roles", f"{prefix}.roles"), f"{prefix}.roles"),
            **rules,
        )

    def settings(self, data: dict[str, Any]) -> AlertSettings:
        p = "alerts"
        top = {
            "enabled",
            "timezone",
            "open",
            "close",
            "queue_peak",
            "device_offline",
            "system_outage",
            "service_uncovered",
            "halls",
            "levels",
            "outage_levels",
            "roles",
            "service_names",
            "wecom",
            "sms",
            "webhooks",
            "alertmanager",
            "forward",
            "outbox",
            "rate_limits",
        }
        if "api_token" in data:
            raise ConfigError(
                f"{p}.api_token",
                "moved: API tokens are in [api.tokens.NAME] with token and scopes; for what "
                'alerts.api_token allowed: scopes = ["alerts:write", "alerts:forward", '
                '"reports:read"] (the token best via HALLWATCH_API_TOKENS_<NAME>_TOKEN_FILE)',
            )
        self.known(data, top, p)
        tz = self.str_(data, "timezone", f"{p}.timezone", "Asia/Shanghai")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ConfigError(f"{p}.timezone", f"unknown time zone {tz!r}") from None
        base_data: dict[str, Any] = {k: data[k] for k in ("open", "close", *_RULES) if k in data}
        default = self.hall_rules(base_data, HallRules(), p)
        halls: dict[str, HallRules] = {}
        for hall, body in self.table(data, "halls", f"{p}.halls").items():
            key = f"{p}.halls.{hall}"
            if not NAME.fullmatch(hall):
                raise ConfigError(key, "hall ids match [A-Za-z0-9_.-]{1,64}")
            if not isinstance(body, dict):
                raise ConfigError(key, "must be a table")
            self.known(
                body,
                {"name", "open", "close", *_RULES, "roles"},
                key,
            )
            # a hall's rule tables override the defaults key by key
            merged = dict(body)
            for name in _RULES:
                merged[name] = {
                    **base_data.get(name, {}),
                    **self.table(body, name, f"{key}.{name}"),
                }
            halls[hall] = self.hall_rules(merged, default, key)
        levels = self.levels(data, "levels", f"{p}.levels", RuleSettings().level_roles)
        outage_levels = self.levels(
            data, "outage_levels", f"{p}.outage_levels", RuleSettings().outage_roles
        )
        roles = self.roles(self.table(data, "roles", f"{p}.roles"), f"{p}.roles")
        names = self.table(data, "service_names", f"{p}.service_names")
        for k, v in names.items():
            if not isinstance(v, str):
                raise ConfigError(f"{p}.service_names.{k}", "must be a string")

        wecom = self.wecom(self.table(data, "wecom", f"{p}.wecom"), f"{p}.wecom")
        sms = self.sms(self.table(data, "sms", f"{p}.sms"), f"{p}.sms")
        webhooks: dict[str, Webhook] = {}
        for name, body in self.table(data, "webhooks", f"{p}.webhooks").items():
            key = f"{p}.webhooks.{name}"
            if not NAME.fullmatch(name) or not isinstance(body, dict):
                raise ConfigError(key, "must be a table named [A-Za-z0-9_.-]{1,64}")
            self.known(body, {"url", "token", "timeout_s"}, key)
            webhooks[name] = Webhook(
                url=self.url(self.str_(body, "url", f"{key}.url", ""), f"{key}.url"),
                token=self.secret(body, "token", f"{key}.token"),
                timeout_s=self.num(body, "timeout_s", f"{key}.timeout_s", 10.0) or 10.0,
            )
        am_data = self.table(data, "alertmanager", f"{p}.alertmanager")
        self.known(am_data, {f.name for f in fields(AlertmanagerSettings)}, f"{p}.alertmanager")
        am = AlertmanagerSettings(
            url=self.url(
                self.str_(am_data, "url", f"{p}.alertmanager.url", ""),
                f"{p}.alertmanager.url",
                empty_ok=True,
            ).rstrip("/"),
            token=self.secret(am_data, "token", f"{p}.alertmanager.token"),
            resend_s=self.num(am_data, "resend_s", f"{p}.alertmanager.resend_s", 60.0) or 60.0,
            generator_url=self.str_(
                am_data, "generator_url", f"{p}.alertmanager.generator_url", ""
            ),
            timeout_s=self.num(am_data, "timeout_s", f"{p}.alertmanager.timeout_s", 10.0) or 10.0,
        )
        fw_data = self.table(data, "forward", f"{p}.forward")
        self.known(fw_data, {f.name for f in fields(ForwardSettings)}, f"{p}.forward")
        forward = ForwardSettings(
            roles=self.strs(fw_data, "roles", f"{p}.forward.roles", ("supervisor",)),
            dedupe_s=self.num(fw_data, "dedupe_s", f"{p}.forward.dedupe_s", 300.0) or 300.0,
            include_own=self.bool_(fw_data, "include_own", f"{p}.forward.include_own", False),
            max_alerts=self.int_(fw_data, "max_alerts", f"{p}.forward.max_alerts", 100),
        )
        ob_data = self.table(data, "outbox", f"{p}.outbox")
        outbox = self.rule_like(OutboxSettings, ob_data, f"{p}.outbox")
        rate_limits = self.rate_limits(self.table(data, "rate_limits", f"{p}.rate_limits"))

        settings = AlertSettings(
            enabled=self.bool_(data, "enabled", f"{p}.enabled", True),
            rules=RuleSettings(
                timezone=tz,
                default=default,
                halls=halls,
                level_roles=levels,
                outage_roles=outage_levels,
            ),
            roles=roles,
            service_names=dict(names),
            wecom=wecom,
            sms=sms,
            webhooks=webhooks,
            alertmanager=am,
            forward=forward,
            outbox=outbox,
            rate_limits=rate_limits,
        )
        self.cross_check(settings)
        return settings

    def rule_like(self, cls: type, data: Mapping[str, Any], prefix: str) -> Any:
        self.known(data, {f.name for f in fields(cls)}, prefix)
        base = cls()
        return cls(
            **{
                f.name: self.num(data, f.name, f"{prefix}.{f.name}", getattr(base, f.name))
                for f in fields(cls)
            }
        )

    def rate_limits(self, data: Mapping[str, Any]) -> dict[str, ChannelLimits]:
        out = dict(RATE_LIMITS)
        for channel, body in data.items():
            key = f"alerts.rate_limits.{channel}"
            if channel not in RATE_LIMITS:
                raise ConfigError(key, f"unknown channel (one of {', '.join(RATE_LIMITS)})")
            if not isinstance(body, dict):
                raise ConfigError(key, "must be a table")
            self.known(body, {f.name for f in fields(ChannelLimits)}, key)
            base = RATE_LIMITS[channel]
            lim = ChannelLimits(
                per_recipient=self.int_(
                    body, "per_recipient", f"{key}.per_recipient", base.per_recipient
                ),
                recipient_window_s=self.num(
                    body, "recipient_window_s", f"{key}.recipient_window_s", base.recipient_window_s
                ),
                total=self.int_(body, "total", f"{key}.total", base.total),
                total_window_s=self.num(
                    body, "total_window_s", f"{key}.total_window_s", base.total_window_s
                ),
            )
            for name in ("recipient_window_s", "total_window_s"):
                if getattr(lim, name) <= 0:
                    raise ConfigError(f"{key}.{name}", "must be more than 0 seconds")
            if channel == "wecom" and (lim.per_recipient > 20 or lim.recipient_window_s < 60):
                raise ConfigError(
                    f"{key}.per_recipient", "WeCom allows a robot at most 20 a minute"
                )
            out[channel] = lim
        return out

    def wecom(self, data: Mapping[str, Any], prefix: str) -> WecomSettings:
        for moved in ("per_minute", "window_s"):
            if moved in data:
                raise ConfigError(
                    f"{prefix}.{moved}",
                    "moved: a robot's limit is alerts.rate_limits.wecom.per_recipient "
                    "(messages) and recipient_window_s (seconds)",
                )
        self.known(data, {"url", "robots", "timeout_s", "throttle_pause_s"}, prefix)
        base_url = self.url(self.str_(data, "url", f"{prefix}.url", WECOM_URL), f"{prefix}.url")
        robots: dict[str, Robot] = {}
        for name, body in self.table(data, "robots", f"{prefix}.robots").items():
            key = f"{prefix}.robots.{name}"
            if not NAME.fullmatch(name) or not isinstance(body, dict):
                raise ConfigError(key, "must be a table named [A-Za-z0-9_.-]{1,64}")
            self.known(body, {"key", "url"}, key)
            secret = self.secret(body, "key", f"{key}.key")
            if not secret:
                raise ConfigError(
                    f"{key}.key", f"missing: set it in the file or {env_name(key + '.key')}"
                )
            url = self.url(self.str_(body, "url", f"{key}.url", base_url), f"{key}.url")
            robots[name] = Robot(url=url, key=secret)
        return WecomSettings(
            robots=robots,
            timeout_s=self.num(data, "timeout_s", f"{prefix}.timeout_s", 10.0) or 10.0,
            throttle_pause_s=self.num(data, "throttle_pause_s", f"{prefix}.throttle_pause_s", 60.0),
        )

    def sms(self, data: Mapping[str, Any], prefix: str) -> SmsSettings:
        self.known(data, {f.name for f in fields(SmsSettings)}, prefix)
        provider = self.str_(data, "provider", f"{prefix}.provider", "none")
        if provider not in SMS_PROVIDERS:
            raise ConfigError(f"{prefix}.provider", f"must be one of {', '.join(SMS_PROVIDERS)}")
        default_ep = {"aliyun": ALIYUN_ENDPOINT, "tencent": TENCENT_ENDPOINT}.get(provider, "")
        endpoint = self.str_(data, "endpoint", f"{prefix}.endpoint", default_ep)
        if provider != "none":
            endpoint = self.url(endpoint, f"{prefix}.endpoint")
        s = SmsSettings(
            provider=provider,
            endpoint=endpoint,
            timeout_s=self.num(data, "timeout_s", f"{prefix}.timeout_s", 10.0) or 10.0,
            access_key_id=self.secret(data, "access_key_id", f"{prefix}.access_key_id"),
            access_key_secret=self.secret(data, "access_key_secret", f"{prefix}.access_key_secret"),
            region=self.str_(
                data,
                "region",
                f"{prefix}.region",
                "ap-guangzhou" if provider == "tencent" else "cn-hangzhou",
            ),
            sign_name=self.str_(data, "sign_name", f"{prefix}.sign_name", ""),
            template_code=self.str_(data, "template_code", f"{prefix}.template_code", ""),
            secret_id=self.secret(data, "secret_id", f"{prefix}.secret_id"),
            secret_key=self.secret(data, "secret_key", f"{prefix}.secret_key"),
            sdk_app_id=self.str_(data, "sdk_app_id", f"{prefix}.sdk_app_id", ""),
            template_id=self.str_(data, "template_id", f"{prefix}.template_id", ""),
            token=self.secret(data, "token", f"{prefix}.token"),
        )
        need = {
            "aliyun": ("access_key_id", "access_key_secret", "sign_name", "template_code"),
            "tencent": ("secret_id", "secret_key", "sdk_app_id", "sign_name", "template_id"),
        }.get(provider, ())
        for name in need:
            if not getattr(s, name):
                raise ConfigError(f"{prefix}.{name}", f"required for provider {provider}")
        return s

    def cross_check(self, s: AlertSettings) -> None:
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
