"""Channels from settings, each held to its `[alerts.rate_limits]`: what the daemon hands the
dispatcher."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from hallwatch.alerts.channels import Channel
from hallwatch.alerts.channels.alertmanager import AlertmanagerChannel
from hallwatch.alerts.channels.limited import RateLimited
from hallwatch.alerts.channels.sms import SmsChannel, provider
from hallwatch.alerts.channels.webhook import WebhookChannel
from hallwatch.alerts.channels.wecom import WecomChannel
from hallwatch.daemon.config.alerts import AlertSettings


def channels(
    settings: AlertSettings, session: aiohttp.ClientSession, *, clock: Callable[[], float]
) -> dict[str, Channel]:
    w = settings.wecom
    out: dict[str, Channel] = {
        "wecom": WecomChannel(
            session,
            w.robots,
            clock=clock,
            timeout_s=w.timeout_s,
            throttle_pause_s=w.throttle_pause_s,
        ),
        "webhook": WebhookChannel(session, settings.webhooks),
    }
    sms = provider(session, settings.sms, clock=clock)
    if sms is not None:
        out["sms"] = SmsChannel(sms)
    if settings.alertmanager.url:
        out["alertmanager"] = AlertmanagerChannel(session, settings.alertmanager)
    return {
        name: RateLimited(ch, settings.rate_limits[name], clock=clock) for name, ch in out.items()
    }
