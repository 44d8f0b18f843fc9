"""Alert metrics: notification counters, and a collector over the firing alerts and outbox.

The collector reads what the service and dispatcher last stored (`firing`, `outbox`), so a
scrape never touches the database and an alert that resolves takes its series with it.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator

from hallwatch.alerts.outbox import OutboxStats
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

RESULTS = ("sent", "retry", "throttled", "failed", "dead")
CHANNELS = ("wecom", "sms", "webhook", "alertmanager")


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter(
            "hallwatch_notifications",
            "Notification send attempts by channel and result "
            "(sent, retry, throttled: the provider said slow down, failed: permanent, dead).",
            ["channel", "result"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "hallwatch_outbox_dead_letters",
            "Notifications given up on (dead-lettered) since start.",
            registry=registry,
        )
        self.rate_limited = Counter(
            "hallwatch_notifications_rate_limited",
            "Times a due notification was held back in the outbox by a rate limit (ours, "
            "[alerts.rate_limits], or the provider's pause); it is sent once it fits.",
            ["channel"],
            registry=registry,
        )
        for ch in CHANNELS:
            self.rate_limited.labels(ch)
            for r in RESULTS:
                self.notifications.labels(ch, r)
        self.firing: list[tuple[str, str, int]] = []  # (hall, alert, level) per firing episode
        self.outbox = OutboxStats(0, 0.0, 0)
        registry.register(_Collector(self))


class _Collector(Collector):
    def __init__(self, m: AlertMetrics) -> None:
        self._m = m

    def collect(self) -> Iterator[Metric]:
        firing = GaugeMetricFamily(
            "hallwatch_alerts_firing",
            "Alert episodes firing now, by hall, alert and level.",
            labels=["hall", "alert", "level"],
        )
        for (hall, alert, level), n in sorted(Tally(self._m.firing).items()):
            firing.add_metric([hall, alert, str(level)], n)
        yield firing
        s = self._m.outbox
        yield GaugeMetricFamily(
            "hallwatch_outbox_depth", "Notifications waiting to be sent.", value=s.depth
        )
        yield GaugeMetricFamily(
            "hallwatch_outbox_oldest_pending_seconds",
            "Age of the oldest notification waiting to be sent (0 when none).",
            value=s.oldest_pending_s,
        )
        yield GaugeMetricFamily(
            "hallwatch_outbox_dead_letters_stored",
            "Dead letters kept in the outbox (until requeued).",
            value=s.dead,
        )
