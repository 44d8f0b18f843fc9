"""Prometheus metrics: ingest counters, and a collector over a snapshot of the hall state.

The state collector builds the series from the state it is handed on each scrape, so a hall,
window or device that goes away takes its series with it (no stale series). A hall's series are
kept between scrapes while no event reaches it (the pipeline's `Changes`) and the business day
is the same; the ones that move with the clock alone (the head of line's wait, device up) are
worked out from kept figures on every scrape, so the exposition is what a fresh build gives.
Each daemon owns its own `CollectorRegistry`; nothing is registered globally.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import date

from hallwatch.daemon.core.state import WAITING, Day, Hall, HallsState
from hallwatch.daemon.metrics.collectors import Settling, writable
from hallwatch.daemon.metrics.exposition import lines_of
from hallwatch.daemon.pipeline.process import Stage
from hallwatch.daemon.pipeline.schedule import Changes
from hallwatch.sensors.events import Reason
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_Fam = GaugeMetricFamily | CounterMetricFamily
PRIORITIES = ("green", "appointment", "normal")
RESULTS = ("accepted", "duplicate", "rejected")
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)


class IngestMetrics:
    """Counters and histograms the ingest path updates."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "hallwatch_events", "Input events by result.", ["result"], registry=registry
        )
        self.rejected = Counter(
            "hallwatch_events_rejected",
            "Rejected inputs by reason.",
            ["reason"],
            registry=registry,
        )
        for result in RESULTS:
            self.events.labels(result)
        for reason in Reason:
            self.rejected.labels(reason.value)
        self.lag = Histogram(
            "hallwatch_event_lag_seconds",
            "Arrival time at the daemon minus the event's own ts (clamped at 0).",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.clock_ahead = Counter(
            "hallwatch_event_ts_in_future",
            "Events whose ts was more than 5 s after their arrival (device clock ahead).",
            registry=registry,
        )
        self.batch = Histogram(
            "hallwatch_store_batch_events",
            "Messages per committed batch.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
            registry=registry,
        )
        self.commit = Histogram(
            "hallwatch_store_commit_seconds",
            "Time to commit one batch to the event store.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
            registry=registry,
        )
        self.connected = Gauge(
            "hallwatch_mqtt_connected", "1 while connected to the MQTT broker.", registry=registry
        )
        self.reconnects = Counter(
            "hallwatch_mqtt_reconnects", "Broker connections lost.", registry=registry
        )
        self.state_errors = Counter(
            "hallwatch_state_errors",
            "Stored events a stage of the core failed on, by stage: parse (a stored event no "
            "longer parses), state, estimator. The event is kept and skipped; a bug.",
            ["stage"],
            registry=registry,
        )
        for stage in Stage:
            self.state_errors.labels(stage.value)
        self.restore_seconds = Gauge(
            "hallwatch_restore_seconds",
            "Time the last start-up took to rebuild the state.",
            registry=registry,
        )
        self.restore_events = Gauge(
            "hallwatch_restore_replayed_events",
            "Events replayed after the snapshot at the last start-up.",
            registry=registry,
        )


class StateCollector(Collector):
    """Hall gauges from the state returned by `source()` at scrape time."""

    def __init__(
        self,
        source: Callable[[], HallsState],
        clock: Callable[[], float],
        heartbeat_timeout_s: float,
        changes: Callable[[], Changes] | None = None,
    ) -> None:
        self._source = source
        self._clock = clock
        self._heartbeat = heartbeat_timeout_s
        self._changes = changes
        self._cache: dict[str, _Kept] = {}
        self._of: tuple[int, date] | None = None  # the state object and business day kept for
        self._settling = Settling()  # `warm`: since when each hall's version has held

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def _current(self, state: HallsState, now: float) -> None:
        of = (id(state), state.business_day(now))
        if of != self._of or len(self._cache) > len(state.halls):
            self._cache.clear()
            self._of = of

    def warm(
        self,
        budget_s: float,
        timer: Callable[[], float] = time.perf_counter,
        *,
        settled_s: float = 0.0,
    ) -> bool:
        """Build the text of halls not kept as of their state, for at most about `budget_s`:
        False when the budget ran out, True when every hall is built (but those not settled).
        At start-up, so that the first scrape does not build 500 halls' text at once (1 s of
        the event loop); then, with `settled_s`, on every tick the halls whose state has not
        changed for that long (a busy hall's text is built by the scrape that reads it, not
        again on every tick)."""
        if self._changes is None:
            return True
        state, now = self._source(), self._clock()
        self._current(state, now)
        version = self._changes().version
        until, built = timer() + budget_s, 0
        for name, hall in state.halls.items():
            kept = self._cache.get(name)
            if kept is None or kept.version != version.get(name):
                if settled_s and not self._settling.settled(
                    name, version.get(name), now, settled_s
                ):
                    continue
                if built and timer() >= until:
                    return False
                self._cache[name] = _Kept(state, name, hall, now, version.get(name))
                built += 1
        self._settling.forget(state.halls)
        return True

    def collect(self) -> Iterator[Metric]:
        state, now = self._source(), self._clock()
        if self._changes is None:
            return iter(state_metrics(state, now, self._heartbeat))
        self._current(state, now)
        version = self._changes().version
        fams = _families(state)
        for key, fam in fams.items():
            if key != "over_limit":
                fam.chunks = []  # type: ignore[union-attr]  # their text, hall by hall
        # The families carry their text only (`chunks`), no Sample objects: at 500 halls those
        # were ~50,000 kept between scrapes (~20 MB) and as many made on each (#14).
        oldest, device_up = fams["oldest"].chunks, fams["device_up"].chunks  # type: ignore[union-attr]
        for name, hall in state.halls.items():
            kept = self._cache.get(name)
            if kept is None or kept.version != version.get(name):
                kept = self._cache[name] = _Kept(state, name, hall, now, version.get(name))
            for key, chunk in kept.chunks.items():
                fams[key].chunks.append(chunk)  # type: ignore[union-attr]
            for first, prefix in kept.heads:
                wait = 0.0 if first is None else max(0.0, now - first)
                oldest.append(prefix + floatToGoString(wait).encode() + b"\n")  # type: ignore[no-untyped-call]
            for online, seen, texts in kept.devices:
                device_up.append(texts[online and now - seen <= self._heartbeat])
        return iter(fams.values())


class _Kept:
    """One hall's series as of `version`, as text: the fixed ones whole, the clocked ones as
    figures (the first issue time of each service's waiting tickets, with the text of its line
    up to the value; each device's status, with the text of both its lines)."""

    __slots__ = ("chunks", "devices", "heads", "version")

    def __init__(self, state: HallsState, name: str, hall: Hall, now: float, version: int | None):
        self.version = version
        fams = _families(None)
        day = state.day_at(hall, now)
        _hall_series(fams, name, hall, day, now, 0.0, clocked=False)
        samples = {k: [s for s in f.samples if writable(s)] for k, f in fams.items() if f.samples}
        first: dict[str, float] = {}
        if day is not None:
            for t in day.tickets.values():
                if t.status == WAITING and t.service and t.issued_at is not None:
                    first[t.service] = min(first.get(t.service, t.issued_at), t.issued_at)
        heads = [[name, s] for s in sorted(hall.services)]
        devs = [([name, dname, d.kind], d) for dname, d in sorted(hall.devices.items())]
        clocked = _families(None)
        for labels in heads:
            clocked["oldest"].add_metric(labels, 0)
        down, live = clocked["device_up"], _families(None)["device_up"]
        for labels, _ in devs:
            down.add_metric(labels, 0)
            live.add_metric(labels, 1)
        # One call of generate_latest for the hall's whole text (it costs per call, too).
        pairs = [(fams[k], v) for k, v in samples.items()]
        pairs += [(f, f.samples) for f in (clocked["oldest"], down, live)]
        texts = lines_of(pairs)
        self.chunks = {k: b"".join(t) for k, t in zip(samples, texts, strict=False)}
        oldest, off, on = texts[-3:]
        self.heads = [
            (first.get(labels[1]), text[: -len(b"0.0\n")])
            for labels, text in zip(heads, oldest, strict=True)
        ]
        self.devices = [
            (d.state == "online", d.last_seen, (o, n))
            for (_, d), o, n in zip(devs, off, on, strict=True)
        ]


def _waiting(day: Day | None, now: float) -> tuple[dict[tuple[str, str], int], dict[str, float]]:
    """Waiting tickets by (service, priority), and the head of line's wait by service."""
    counts: dict[tuple[str, str], int] = {}
    head: dict[str, float] = {}
    if day is not None:
        for t in day.tickets.values():
            if t.status == WAITING and t.service:
                key = (t.service, t.priority)
                counts[key] = counts.get(key, 0) + 1
                if t.issued_at is not None:
                    head[t.service] = max(head.get(t.service, 0.0), now - t.issued_at)
    return counts, head


def state_metrics(state: HallsState, now: float, heartbeat_timeout_s: float) -> list[Metric]:
    """The hall gauges for `state` as seen at `now` (pure: tests call it directly)."""
    fams = _families(state)
    for name, hall in state.halls.items():
        _hall_series(fams, name, hall, state.day_at(hall, now), now, heartbeat_timeout_s)
    return list(fams.values())


def _families(state: HallsState | None) -> dict[str, _Fam]:
    """The state families, empty but for the global counter (when `state` is given), in the
    order of the exposition."""
    g = GaugeMetricFamily
    headcount = g(
        "hallwatch_hall_headcount", "People in the hall (door counters).", labels=["hall"]
    )
    peak = g(
        "hallwatch_hall_headcount_peak",
        "Highest headcount so far this business day.",
        labels=["hall"],
    )
    waiting = g(
        "hallwatch_queue_waiting",
        "Tickets waiting to be called.",
        labels=["hall", "service", "priority"],
    )
    oldest = g(
        "hallwatch_queue_oldest_wait_seconds",
        "How long the longest-waiting ticket of a service has waited (head of line).",
        labels=["hall", "service"],
    )
    windows_open = g("hallwatch_windows_open", "Windows open now.", labels=["hall"])
    emergency = g(
        "hallwatch_windows_emergency_open",
        "Emergency windows (opened under the plan) open now.",
        labels=["hall"],
    )
    window_state = g(
        "hallwatch_window_state",
        "1 for the window's current state.",
        labels=["hall", "window", "state"],
    )
    serving = g(
        "hallwatch_window_serving",
        "1 while the window is serving a customer.",
        labels=["hall", "window"],
    )
    tickets = g(
        "hallwatch_tickets_today",
        "Ticket transitions this business day.",
        labels=["hall", "event"],
    )
    wait_mean = g(
        "hallwatch_wait_mean_seconds_today",
        "Mean wait from issue to call of the tickets called this business day.",
        labels=["hall"],
    )
    device_up = g(
        "hallwatch_device_up",
        "1 if the device said online and was heard within its heartbeat timeout.",
        labels=["hall", "device", "kind"],
    )
    device_seen = g(
        "hallwatch_device_last_seen_timestamp_seconds",
        "Event time of the device's last status message.",
        labels=["hall", "device"],
    )
    system_state = g(
        "hallwatch_system_state",
        "1 for the information system's current state.",
        labels=["hall", "system", "state"],
    )
    complaints = g(
        "hallwatch_complaints_registered", "Complaints registered.", labels=["hall", "severity"]
    )
    last_event = g(
        "hallwatch_hall_last_event_timestamp_seconds",
        "Event time of the newest event from the hall.",
        labels=["hall"],
    )
    over_limit = CounterMetricFamily(
        "hallwatch_events_over_limit",
        "Stored events not applied because they would pass a cap in [limits].",
    )
    if state is not None:
        over_limit.add_metric([], state.over_limit)
    stale = CounterMetricFamily(
        "hallwatch_events_stale",
        "Stored events not applied because they belong to an earlier business day than the "
        "hall's (late redelivery, a device clock behind).",
        labels=["hall"],
    )
    return {
        "over_limit": over_limit,
        "stale": stale,
        "headcount": headcount,
        "peak": peak,
        "waiting": waiting,
        "oldest": oldest,
        "windows_open": windows_open,
        "emergency": emergency,
        "window_state": window_state,
        "serving": serving,
        "tickets": tickets,
        "wait_mean": wait_mean,
        "device_up": device_up,
        "device_seen": device_seen,
        "system_state": system_state,
        "complaints": complaints,
        "last_event": last_event,
    }


def _hall_series(
    fams: dict[str, _Fam],
    name: str,
    hall: Hall,
    day: Day | None,
    now: float,
    heartbeat_timeout_s: float,
    *,
    clocked: bool = True,
) -> None:
    """One hall's series into `fams`; with `clocked` False, not those that move with the clock
    alone (the head of line's wait, device up)."""
    fams["stale"].add_metric([name], hall.stale_events)
    fams["last_event"].add_metric([name], hall.last_event_at)
    fams["headcount"].add_metric([name], day.occupancy if day else 0)
    fams["peak"].add_metric([name], day.peak_occupancy if day else 0)
    counts, head = _waiting(day, now)
    for service in sorted(set(hall.services)):
        for prio in PRIORITIES:
            fams["waiting"].add_metric([name, service, prio], counts.get((service, prio), 0))
        if clocked:
            fams["oldest"].add_metric([name, service], max(0.0, head.get(service, 0.0)))
    opened = sum(1 for w in hall.windows.values() if w.state == "open")
    fams["windows_open"].add_metric([name], opened)
    fams["emergency"].add_metric(
        [name], sum(1 for w in hall.windows.values() if w.state == "open" and w.emergency)
    )
    for wname, win in sorted(hall.windows.items()):
        for st in ("open", "paused", "closed"):
            fams["window_state"].add_metric([name, wname, st], 1 if win.state == st else 0)
        fams["serving"].add_metric([name, wname], 1 if win.serving else 0)
    if day is not None:
        for field in ("issued", "called", "completed", "no_show", "cancelled", "transferred"):
            fams["tickets"].add_metric([name, field], getattr(day, field))
        fams["wait_mean"].add_metric([name], day.wait_total_s / day.called if day.called else 0.0)
    for dname, dev in sorted(hall.devices.items()):
        if clocked:
            up = dev.state == "online" and now - dev.last_seen <= heartbeat_timeout_s
            fams["device_up"].add_metric([name, dname, dev.kind], 1 if up else 0)
        fams["device_seen"].add_metric([name, dname], dev.last_seen)
    for sname, sys_ in sorted(hall.systems.items()):
        for st in ("up", "degraded", "down"):
            fams["system_state"].add_metric([name, sname, st], 1 if sys_.state == st else 0)
    sev: dict[str, int] = {"normal": 0, "serious": 0}
    for c in hall.complaints.values():
        sev[c.severity] = sev.get(c.severity, 0) + 1
    for s, n in sev.items():
        fams["complaints"].add_metric([name, s], n)
