"""Alertmanager API v2: `POST /api/v2/alerts` with a list of postable alerts.

Firing alerts are re-posted every `resend_s` with `endsAt` a few resend periods ahead, so a
daemon that dies leaves alerts that expire instead of firing forever; a resolve sets `endsAt`
to the resolution time.
"""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
from hallwatch.alerts.channels import Result, by_status, request
from hallwatch.alerts.outbox import Notification
from hallwatch.daemon.config.alerts import AlertmanagerSettings

ALERTNAMES = {
    "queue_peak": "HallQueuePeak",
    "device_offline": "HallDeviceOffline",
    "system_outage": "HallSystemOutage",
    "system_degraded": "HallSystemDegraded",
    "service_uncovered": "HallServiceUncovered",
}


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def postable(
    *,
    alert: str,
    hall: str,
    subject: str,
    level: int,
    alert_id: str,
    summary: str,
    started_at: float,
    ends_at: float,
    generator_url: str = "",
    hall_name: str = "",
) -> dict[str, object]:
    """One postable alert (labels, annotations, startsAt, endsAt, generatorURL)."""
    labels = {
        "alertname": ALERTNAMES.get(alert, alert),
        "alert": alert,
        "hall": hall,
        "severity": "critical" if level >= 2 else "warning",
        "level": str(level),
        "source": "hallwatch",
    }
    if subject:
        labels["subject"] = subject
    out: dict[str, object] = {
        "labels": labels,
        "annotations": {"summary": summary, "alert_id": alert_id, "hall_name": hall_name or hall},
        "startsAt": rfc3339(started_at),
        "endsAt": rfc3339(ends_at),
    }
    if generator_url:
        out["generatorURL"] = generator_url
    return out


class AlertmanagerChannel:
    name = "alertmanager"

    def __init__(self, session: aiohttp.ClientSession, s: AlertmanagerSettings) -> None:
        self._session, self._s = session, s

    def ready_at(self, note: Notification, now: float) -> float:
        return now

    async def send(self, note: Notification) -> Result:
        headers = {}
        if self._s.token:
            headers["Authorization"] = f"Bearer {self._s.token}"
        reply = await request(
            self._session,
            "POST",
            f"{self._s.url}/api/v2/alerts",
            timeout_s=self._s.timeout_s,
            json=note.payload["alerts"],
            headers=headers,
        )
        return reply if isinstance(reply, Result) else by_status(reply, "alertmanager")
