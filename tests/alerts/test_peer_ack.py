"""Two instances, one acknowledgement: an alert acknowledged through one instance of the pair
stops repeating from the other too (the shared acknowledgement log in a private PostgreSQL)."""

from __future__ import annotations

from hallwatch.daemon.config.alerts_reader import read_alerts

from tests.alerts.pair import pair
from tests.alerts.test_alert_receiver import config, crowd


async def test_ack_through_one_instance_silences_the_other(pg_url: str) -> None:
    """a and b fire the same peak (one alert id); a takes the acknowledgement; b's next tick
    past the repeat interval emits no repeat and shows who acknowledged."""
    settings = read_alerts(config(), {})
    async with pair(pg_url, settings) as (a, b):
        fired_a = [t for s in (0, 60) for t in await a.evaluate([crowd(s)])]
        fired_b = [t for s in (1, 61) for t in await b.evaluate([crowd(s)])]
        assert [t.alert_id for t in fired_a] == [t.alert_id for t in fired_b]
        await a.ack(fired_a[0].alert_id, "王主任")
        repeat_s = settings.rules.for_hall("h1").queue_peak.repeat_s
        later = await b.evaluate([crowd(61 + repeat_s + 1)])
        assert [t.state for t in later] == [], "no repeat after the pair's acknowledgement"
        assert b.active()[0]["acked_by"] == "王主任"
