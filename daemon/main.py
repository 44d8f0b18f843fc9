"""The daemon: restore state, then ingest, estimate, alert and serve HTTP under one TaskGroup."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from hallwatch.alerts import build as alert_build
from hallwatch.alerts.acklink import AckLinks
from hallwatch.alerts.claims import InstanceCollector, open_outbox
from hallwatch.alerts.dispatcher import Dispatcher
from hallwatch.alerts.metrics import AlertMetrics
from hallwatch.alerts.receiver import add_routes as add_alert_routes
from hallwatch.alerts.service import Alerts
from hallwatch.daemon.base.tasks import cancel_all
from hallwatch.daemon.config.alerts import AlertSettings
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.estimate.advice import Advice, Steps
from hallwatch.daemon.estimate.model import EstimateOut, Estimator
from hallwatch.daemon.metrics.collectors import SafeRegistry
from hallwatch.daemon.metrics.families import IngestMetrics, StateCollector
from hallwatch.daemon.metrics.live import LiveCollector
from hallwatch.daemon.mqtt.client import make_output_client
from hallwatch.daemon.mqtt.ingest import Ingest
from hallwatch.daemon.mqtt.outputs import OutputPublisher, estimate_payload, status_payload
from hallwatch.daemon.pipeline.lane import EstimateLane
from hallwatch.daemon.pipeline.process import Faults, Pipeline
from hallwatch.daemon.pipeline.restore import bound_heap, give_back, load_snapshot, replay
from hallwatch.daemon.pipeline.restore import decode_snapshot as decode_snapshot
from hallwatch.daemon.pipeline.restore import encode_snapshot as encode_snapshot
from hallwatch.daemon.pipeline.restore import restore as restore
from hallwatch.daemon.pipeline.schedule import YIELD_S, AdviceCache, TickPlan, has_waiting
from hallwatch.daemon.pipeline.turns import Turns
from hallwatch.daemon.pipeline.views import hall_view
from hallwatch.daemon.staff.complaint_desk import ComplaintDesk
from hallwatch.daemon.staff.complaint_store import ComplaintStore
from hallwatch.daemon.staff.outage import Callbacks, CallbackStore, HealthProbe
from hallwatch.daemon.staff.paper import PaperIntake, PaperStore
from hallwatch.daemon.staff.procedures import StaffProcedures, Stores, warn_calendar
from hallwatch.daemon.store.events import Store, open_store
from hallwatch.daemon.web import offpeak_api, openapi, overview, report_api, screen, staff_api
from hallwatch.daemon.web.ack_page import mount as mount_ack_page
from hallwatch.daemon.web.overview_share import OverviewShare, opened
from hallwatch.daemon.web.server import HttpServer
from prometheus_client import Gauge, disable_created_metrics

log = logging.getLogger("hallwatch")

DRAIN_S = 10.0  # what a shutdown waits for the tasks before it reports the stragglers
TICK_S = 2.0  # alert rules and hall status are evaluated this often


def make_estimator(settings: Settings, blob: bytes | None = None) -> Estimator:
    kw: dict[str, Any] = {
        "tz": settings.hall.timezone,
        "target_wait_s": settings.hall.target_wait_s,
        "closing": settings.hall.closing,
        "hours": settings.hours,  # each hall's closing, for its "clear by closing" advice
    }
    return Estimator.restore(blob, **kw) if blob else Estimator(**kw)


METRICS_WARM_S = 0.03  # a tick's time for rebuilding changed halls' metrics text, at most
SETTLED_S = 10.0  # ... of halls whose state has not changed for this long


class Daemon:
    """One running hallwatch: `await Daemon(settings).run(stop)`."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        disable_created_metrics()  # type: ignore[no-untyped-call]  # noise on a wall display
        # Every collector isolated: one that fails is left out, the scrape still served.
        self.registry = SafeRegistry(clock)
        self.metrics = IngestMetrics(self.registry)
        self.limits = settings.limits.limits()
        self.state = HallsState(tz=settings.hall.timezone, limits=self.limits)
        self.estimator = make_estimator(settings)
        self.calendar: WorkCalendar = settings.calendar.calendar()
        self.alert_settings: AlertSettings = settings.alerts
        self.state_metrics = StateCollector(
            lambda: self.state,
            clock,
            settings.hall.heartbeat_timeout_s,
            lambda: self.pipeline.changes,
        )
        self.registry.register(self.state_metrics)
        self.live_metrics = LiveCollector(self)
        self.registry.register(self.live_metrics)
        self.alert_metrics = AlertMetrics(self.registry)
        self.outputs = OutputPublisher(settings, self.registry)
        self.faults = Faults(clock, lambda stage: self.metrics.state_errors.labels(stage).inc())
        # Background work gives way to events on their way in (pipeline/turns.py, #14).
        self.turns = (Turns("estimates", self._way_in), Turns("tick", self._way_in_or_out))
        self.lane = EstimateLane(
            self.estimator,
            lambda: self.state,
            self._publish_estimate,
            clock,
            settings.hall.estimate_stale_s,
            faults=self.faults,
            give_way=self.turns[0].give_way,
        )
        # The one way a stored event enters the state and the estimator, live and at start-up.
        self.pipeline: Pipeline = Pipeline(lambda: self.state, self.lane.push, self.faults)
        self.http_started = asyncio.Event()
        self.http: HttpServer | None = None
        self.ingest: Ingest | None = None
        self.alerts: Alerts | None = None
        self.dispatcher: Dispatcher | None = None
        self.share = OverviewShare(self, None, settings.store)  # the overview across shards
        # --- staff procedures ---
        self.complaints: ComplaintDesk | None = None
        self.callbacks: Callbacks | None = None
        self.paper: PaperIntake | None = None
        self.registry.register(
            staff_api.StaffCollector(
                lambda: self.complaints, lambda: self.callbacks, clock, lambda: self.paper
            )
        )
        # --- end staff procedures ---
        self._snap_seq = 0
        self._since_snap = 0
        self.plan = TickPlan(self.turns[1].give_way)
        self._advice = AdviceCache(
            self._compute_advice,
            lambda: self.pipeline.changes,
            lambda: self.plan,
            lambda hall, now: has_waiting(self.state, hall, now),
            self._advice_steps,
            self.turns[1].give_way,
        )
        self.tick_halls = Gauge(
            "hallwatch_alert_tick_halls",
            "Halls the last alert tick evaluated: changed, alerting, due, or not seen for 30 s.",
            registry=self.registry,
        )
        self.tick_seconds = Gauge(
            "hallwatch_alert_tick_seconds",
            "How long the last alert tick took (it gives way to ingest every 5 ms).",
            registry=self.registry,
        )

    def _way_in(self) -> bool:
        """What the estimator lane gives way to: messages waiting, estimates queued to send."""
        return bool(self.ingest and self.ingest.waiting()) or self.outputs.pending()

    def _way_in_or_out(self) -> bool:
        """... and the tick also to a batch in hand, the lane's backlog, and a notification
        between its answer and its record (the at-least-once window of a kill, #18)."""
        d = self.dispatcher
        busy = (self.ingest and self.ingest.busy()) or self.lane.backlog or (d and d.answered)
        return bool(busy) or self.outputs.pending()

    def health(self) -> tuple[bool, dict[str, Any]]:
        ing = self.ingest
        connected = bool(ing and ing.connected)
        return connected, {
            "mqtt_connected": connected,
            "events_applied": self.state.applied,
            "last_seq": ing.last_seq if ing else 0,
            "last_commit_at": ing.last_commit_at if ing else None,
            "estimate_backlog": self.lane.backlog,
        }

    def advice(self, hall: str, *, fresh: bool = False) -> Advice | None:
        """The estimator's staffing advice for a hall, cached (pipeline/schedule.py
        `AdviceCache`): the alert tick's own (`fresh`), or a reader's (a scrape, the screen)."""
        now = self.clock()
        return self._advice.for_tick(hall, now) if fresh else self._advice.for_reader(hall, now)

    def _compute_advice(self, hall: str, now: float) -> Advice | None:
        if hall not in self.state.halls:
            return None
        return self.estimator.advice(self.state, hall, now)

    def _advice_steps(self, hall: str, now: float) -> Steps | None:
        if hall not in self.state.halls:
            return None
        return self.estimator.advice_steps(self.state, hall, now)

    def _publish_estimate(self, out: EstimateOut) -> None:
        root = self.settings.mqtt.topic_root
        self.outputs.put(f"{root}/{out.hall}/estimate", estimate_payload(out))

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        async with (
            open_store(s.store) as store,
            open_outbox(s.store) as outbox,
            ComplaintStore.open(s.store) as complaint_store,
            CallbackStore.open(s.store) as callback_store,
            PaperStore.open(s.store) as paper_store,
            opened(s.store) as overview_table,
            aiohttp.ClientSession() as session,
        ):
            self.registry.register(InstanceCollector(s.store.instance_name(), outbox))
            await self._restore(store)
            self.alerts = Alerts(
                self.alert_settings, outbox, clock=self.clock, metrics=self.alert_metrics
            )
            self.alerts.links = AckLinks.start(s.duty, s.store.path)  # the messages' ack links
            await self.alerts.start()
            self.dispatcher = dispatcher = Dispatcher(
                outbox,
                alert_build.channels(self.alert_settings, session, clock=self.clock),
                self.alert_settings.outbox,
                clock=self.clock,
                metrics=self.alert_metrics,
            )
            self.ingest = Ingest(
                s,
                store,
                self.pipeline.process,
                self.metrics,
                clock=self.clock,
                on_batch=self._counted,
            )
            host, port = s.http.host_port()
            self.http = HttpServer(
                host,
                port,
                self.registry,
                lambda: self.state,
                self.health,
                self.clock,
                s.hall.heartbeat_timeout_s,
                rate_per_minute=s.http.rate_per_minute,
                tokens=s.api.tokens,
                read_timeout_s=s.http.read_timeout_s,
            )
            self.http.waits = lambda h: screen.state_waits(self.estimator, self.advice(h), h)
            add_alert_routes(self.http.app, self.alerts, outbox)
            mount_ack_page(self.http.app, self)
            # --- staff procedures ---
            staff = await self._start_staff(
                Stores(complaint_store, callback_store, paper_store, outbox)
            )
            assert self.complaints and self.callbacks and self.paper
            staff_api.add_routes(
                self.http.app,
                complaints=self.complaints,
                callbacks=self.callbacks,
                paper=self.paper,
                tz=s.hall.timezone,
            )
            probe = HealthProbe(
                s.outage.probes,
                self.outputs.put,
                session,
                topic_root=s.mqtt.topic_root,
                clock=self.clock,
            )
            # --- end staff procedures ---
            offpeak_api.add_routes(
                self.http.app,
                state=lambda: self.state,
                estimator=lambda: self.estimator,
                clock=self.clock,
                calendar=self.calendar,
                hours=s.hours,
            )
            screen.add_routes(
                self.http.app,
                screen.live_model(
                    state=lambda: self.state,
                    estimator=lambda: self.estimator,
                    advice=self.advice,
                    recovery_at=self._recovery_at,
                    clock=self.clock,
                    calendar=self.calendar,
                    hours=s.hours,
                ),
            )
            report_api.add_routes(self.http.app, s.store, s)
            self.share = OverviewShare(self, overview_table, s.store)  # PostgreSQL: shared
            overview.add_routes(self.http.app, self.share.model(overview.live_model(self)))
            openapi.add_routes(self.http.app)
            self._warn_calendar()
            for note in s.warnings:  # e.g. a lunch rotation leaving a service uncovered
                log.warning("config: %s", note)
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self.ingest.run(), name="ingest"),
                    tg.create_task(self.lane.run(), name="estimates"),
                    tg.create_task(self.outputs.run(lambda: make_output_client(s)), name="outputs"),
                    tg.create_task(self.http.run(self.http_started), name="http"),
                    tg.create_task(self._snapshots(store), name="snapshots"),
                    tg.create_task(self._ticks(), name="alerts"),
                    tg.create_task(dispatcher.run(), name="dispatcher"),
                    tg.create_task(staff.run(), name="staff"),
                    tg.create_task(probe.run(), name="probes"),
                    tg.create_task(self.share.run(), name="overview-share"),
                ]
                await self.http_started.wait()
                assert self.http.bound is not None
                log.info("serving http://%s:%d/metrics", *self.http.bound)
                await stop.wait()
                log.info("stopping: draining the current batch")
                # A stop that hangs says where: every thread's stack on stderr (the journal).
                faulthandler.dump_traceback_later(2 * DRAIN_S, exit=False)
                await cancel_all(tasks, DRAIN_S)
            self.lane.drain()
            if self.ingest.last_seq > self._snap_seq:
                await self._snapshot(store, self.ingest.last_seq)
        faulthandler.cancel_dump_traceback_later()
        log.info("stopped")

    async def _restore(self, store: Store) -> None:
        """The state and the estimator's learning from the newest snapshot, then every event
        stored after it through the pipeline, as if it arrived now (estimates not published)."""
        s = self.settings
        started = time.perf_counter()
        bound_heap()
        state, est_blob, upto = await load_snapshot(store, s.hall.timezone)
        state.limits = self.limits  # the caps of these settings, for the replay too
        self.state = state
        self.pipeline.changes.touch_all(state.halls)
        self.estimator = make_estimator(s, est_blob)
        self.lane.estimator = self.estimator
        last, replayed = await replay(
            store,
            upto,
            s.mqtt.topic_root,
            self.pipeline,
            each=lambda: self.lane.drain(publish=False),
        )
        took = time.perf_counter() - started
        self.metrics.restore_seconds.set(took)
        self.metrics.restore_events.set(replayed)
        failed = {k.value: v for k, v in self.faults.failed.items() if v}
        log.info(
            "state restored in %.3f s (%d events replayed, %d halls%s)",
            took,
            replayed,
            len(self.state.halls),
            f"; failed: {failed}" if failed else "",
        )
        self._snap_seq = last
        if replayed:
            await self._snapshot(store, last)
        give_back()

    def _warn_calendar(self) -> None:
        warn_calendar(self.calendar, self.state.business_day(self.clock()))

    def _counted(self, applied: int) -> None:
        self._since_snap += applied

    async def _ticks(self) -> None:
        """Every tick: alert rules over every hall, and the retained status per hall."""
        last_calendar_check = self.clock()
        warm = False
        while True:
            await asyncio.sleep(TICK_S)
            now = self.clock()
            try:
                await self.tick(now)
                # After the first tick (every hall's advice), every hall's metrics text, built in
                # slices: else the first scrape builds it at once (1 s at 500 halls). Then on
                # every tick the text of halls that changed and then stayed as they are for
                # SETTLED_S, within METRICS_WARM_S: a scrape after a busy spell rebuilt 500 halls'
                # text in one go (220 ms).
                until = time.perf_counter() + METRICS_WARM_S
                while True:
                    settled = SETTLED_S if warm else 0.0
                    done = self.state_metrics.warm(YIELD_S / 2, settled_s=settled)
                    done = self.live_metrics.warm(YIELD_S / 2, settled_s=settled) and done
                    if done or (warm and time.perf_counter() >= until):
                        break
                    await self.turns[1].give_way()
                warm = True
            except Exception:
                log.exception("alert tick failed")
            if now - last_calendar_check > 86400:
                last_calendar_check = now
                self._warn_calendar()

    async def tick(self, now: float) -> None:
        """One tick: the views of the halls due (pipeline/schedule.py says which), the alert
        rules on them (notifications to the outbox), and their retained status."""
        assert self.alerts is not None
        s = self.settings
        started = time.perf_counter()
        halls = self.plan.halls(
            self.state.halls,
            self.pipeline.changes,
            now,
            active={e.hall for e in self.alerts.engine.episodes.values()},
            status_due=self.outputs.status_due,
        )
        await self._advice.renew(halls, now)  # a slice at a time; then the views read it
        views = await self.plan.views(
            self.state,
            self.pipeline.changes,
            now,
            halls,
            lambda name, queue, at: hall_view(
                self.state,
                name,
                at,
                advice=self._advice.for_tick(name, now),
                heartbeat_timeout_s=s.hall.heartbeat_timeout_s,
                calendar=self.calendar,
                queue=queue,
            ),
            rules=self.alerts.engine.settings,
            heartbeat_timeout_s=s.hall.heartbeat_timeout_s,
            renew_at=self._advice.renew_at,
            clock=self.clock,  # the advice's renewal and the views gave way: later events
        )
        await self.alerts.evaluate(views)
        self.share.offer(views)  # their overview rows, for the other shards (PostgreSQL)
        self.plan.evaluated(now, self.state.halls)
        self._advice.forget(self.state.halls)
        firing: dict[str, list[dict[str, Any]]] = {}
        for a in self.alerts.active():
            firing.setdefault(a["hall"], []).append(a)
        yielded = time.perf_counter()
        for view in views:  # giving way every YIELD_S: 100 halls' statuses are 10-25 ms
            if time.perf_counter() - yielded > YIELD_S:
                await self.turns[1].give_way()
                yielded = time.perf_counter()
            alerts = firing.get(view.hall, [])
            payload = status_payload(
                view.hall,
                now,
                headcount=view.headcount,
                waiting=dict(view.waiting_by_service),
                estimated_wait_s=dict(view.est_wait_s_by_service),
                windows_open=view.windows_open,
                alerts=alerts,
                systems_down=[k for k, v in view.systems.items() if v[0] == "down"],
            )
            outage = self.callbacks.status(view.hall, now) if self.callbacks else None
            payload["outage"] = outage.payload() if outage else None  # staff procedures
            self.outputs.status(view.hall, payload, now, keep_alive=view.hall in self.plan.swept)
        self.tick_halls.set(len(views))
        self.tick_seconds.set(time.perf_counter() - started)

    def _recovery_at(self, hall: str) -> float | None:
        """When the information centre expects the hall's system back (the screen shows it)."""
        return self.callbacks.expected.get(hall) if self.callbacks else None

    # --- staff procedures (plan 4.2 complaints, 4.3 outage call-backs) --------------------------

    async def _start_staff(self, stores: Stores) -> StaffProcedures:
        """The staff procedures built over their stores; `run` ticks them in its TaskGroup."""
        staff = StaffProcedures(
            self.settings,
            self.alert_settings.rules,
            self.calendar,
            state=lambda: self.state,
            clock=self.clock,
            notifier=self.alerts,
            per_day=self.limits.complaints,
        )
        self.complaints, self.callbacks, self.paper = await staff.start(stores)
        return staff

    # --- end staff procedures -------------------------------------------------------------------

    async def _snapshots(self, store: Store) -> None:
        """Snapshot every `store.snapshot_every` applied events, checked once a second."""
        assert self.ingest is not None
        while True:
            await asyncio.sleep(1.0)
            if self._since_snap >= self.settings.store.snapshot_every:
                await self._snapshot(store, self.ingest.last_seq)

    async def _snapshot(self, store: Store, upto: int) -> None:
        # Drain the estimator and encode synchronously, so both match `upto` exactly.
        self.lane.drain()
        body = encode_snapshot(self.state, self.estimator)
        self._since_snap = 0
        self._snap_seq = upto
        await store.save_snapshot(upto, self.clock(), body)
        del body
        give_back()


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then drain and stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Daemon(settings).run(stop)
