"""The pure rule engine: hall views in, alert transitions out. No clock, no I/O.

One episode per (hall, alert, subject): `pending` while the condition has held for less than
its `for`, then `firing` until it has been below the lower marks for `clear_for_s`. An episode
fires once, escalates at most once per level, repeats while unacknowledged, and resolves once.
Peak alerts start only inside opening hours on working days; an episode still firing when the
hall closes is resolved with reason "closed", so the next day starts clean.

A queue peak that cleared is kept `resolved` for `relapse_s`: crossing again within it (for
`for_s`) reopens the same episode, same alert id and level, with one "relapsed" notice to the
first level's roles, instead of a new alert paging everyone again.

The peak's wait is the forecast for a new ticket or the longest wait already endured by anyone
still waiting, whichever crosses: with no open window for a service the forecast is None, and
the endured wait is what keeps the 20-minute trigger from going blind. Such a service is also
its own alert, `service_uncovered`, after `after_s`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
from hallwatch.alerts import messages
from hallwatch.alerts.figures import figures, max_endured, max_wait, wait_crossings, with_outage
from hallwatch.alerts.figures import unreliable as unreliable
from hallwatch.alerts.view import Crossing, Figures, HallView, Transition
from hallwatch.daemon.config.alerts import (
    DegradedRule,
    DeviceRule,
    HallRules,
    PeakRule,
    RuleSettings,
    SystemRule,
    UncoveredRule,
)


class Episode(msgspec.Struct):
    hall: str
    alert: str
    subject: str
    phase: str  # pending | firing | resolved (queue_peak: cleared, may still relapse)
    since: float  # when the condition began (pending) / the episode's start (firing)
    level: int = 0
    repeat_slot: int = 0  # the grid slot of the last repeat (see `_tick_firing`)
    relapses: int = 0  # how often a cleared peak came back within relapse_s (this engine saw;
    # a shared outbox numbers relapses and resolutions by its own count: alerts/claims.py)
    quiet: bool = False  # another instance resolved it: no repeats, no escalations from here
    last_notified: float = 0.0
    clear_since: float | None = None
    acked_by: str | None = None
    acked_at: float | None = None
    peak_headcount: int = 0
    peak_wait_s: float | None = None
    peak_wait_service: str | None = None
    peak_endured_s: float | None = None
    peak_endured_service: str | None = None
    resolved_at: float | None = None  # phase resolved: when it cleared
    relapse_since: float | None = None  # phase resolved: when the condition came back
    last_level_change: float = 0.0
    summary: str = ""
    outage: list[str] = msgspec.field(default_factory=list)  # systems down during a peak

    @property
    def alert_id(self) -> str:
        parts = [self.hall, self.alert] + ([self.subject] if self.subject else [])
        return ":".join([*parts, str(int(self.since))])


class _Snapshot(msgspec.Struct):
    version: int
    episodes: list[Episode]


class RuleEngine:
    """Alert episodes of every hall. Feed it views in time order with `evaluate`."""

    def __init__(self, settings: RuleSettings) -> None:
        self.settings = settings
        self._zone = ZoneInfo(settings.timezone)
        self.episodes: dict[tuple[str, str, str], Episode] = {}

    # --- queries ------------------------------------------------------------------------

    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self._zone)

    def in_hours(self, view: HallView) -> bool:
        """Working day and between the hall's opening and closing time."""
        rules = self.settings.for_hall(view.hall)
        t = self.local(view.now).time()
        return view.is_working_day and rules.open <= t < rules.close

    def firing(self) -> list[Episode]:
        """Episodes that are firing now, in a stable order."""
        return sorted(
            (e for e in self.episodes.values() if e.phase == "firing"),
            key=lambda e: (e.hall, e.alert, e.subject),
        )

    def find(self, alert_id: str) -> Episode | None:
        for e in self.episodes.values():
            if e.phase == "firing" and e.alert_id == alert_id:
                return e
        return None

    def ack(self, alert_id: str, by: str, now: float) -> Episode | None:
        """Acknowledge a firing alert: no more repeats this episode. None if not firing."""
        e = self.find(alert_id)
        if e is not None and e.acked_at is None:
            e.acked_by, e.acked_at = by, now
        return e

    def rebase(self, hall: str, alert: str, subject: str, since: float) -> Episode | None:
        """Give an episode the start (and so the alert id) another instance gave it first."""
        e = self.episodes.get((hall, alert, subject))
        if e is not None:
            e.since = since
        return e

    def quiet(self, hall: str, alert: str, subject: str) -> None:
        """Another instance resolved this episode while this one still sees it (it is behind,
        or restarted with an older state): no repeats or escalations; it ends here when this
        instance sees it end (under the key the other's end had), and only then may a new one
        begin. Dropping it instead would make this late view fire the same peak anew."""
        e = self.episodes.get((hall, alert, subject))
        if e is not None:
            e.quiet = True

    # --- persistence --------------------------------------------------------------------

    def snapshot(self) -> bytes:
        return msgspec.json.encode(_Snapshot(1, list(self.episodes.values())))

    def restore(self, blob: bytes | None) -> None:
        """Load episodes saved by `snapshot` (an unreadable blob starts clean)."""
        self.episodes = {}
        if not blob:
            return
        try:
            snap = msgspec.json.decode(blob, type=_Snapshot)
        except msgspec.DecodeError:
            return
        for e in snap.episodes:
            self.episodes[(e.hall, e.alert, e.subject)] = e

    # --- evaluation ---------------------------------------------------------------------

    def evaluate(self, view: HallView) -> list[Transition]:
        """Advance every episode of `view.hall` to `view.now`; return what changed."""
        rules = self.settings.for_hall(view.hall)
        open_now = self.in_hours(view)
        out: list[Transition] = []
        out += self._queue_peak(view, rules, open_now)
        out += self._devices(view, rules.device_offline, open_now)
        out += self._systems(view, rules.system_outage, open_now)
        out += self._degraded(view, rules.system_degraded, open_now)
        out += self._uncovered(view, rules.service_uncovered, open_now, self.lunch(view, rules))
        return out

    def lunch(self, view: HallView, rules: HallRules) -> tuple[str, ...]:
        """The hall's lunch slots under way at `view.now` ("w1 11:30–12:30")."""
        t = self.local(view.now).time()
        return tuple(slot.text() for slot in rules.lunch if slot.covers(t))

    def _emit(
        self,
        e: Episode,
        view: HallView,
        state: str,
        figs: Figures,
        *,
        reason: str = "",
        ordinal: int = 1,
    ) -> Transition:
        e.last_notified = view.now
        peak = None
        if state == "resolved":
            peak = Figures(
                headcount=e.peak_headcount,
                max_wait_s=e.peak_wait_s,
                max_wait_service=e.peak_wait_service,
                max_endured_s=e.peak_endured_s,
                max_endured_service=e.peak_endured_service,
            )
        level = max(e.level, 1)
        # A relapse continues an episode: one notice to the first level, nobody else paged.
        to_level = 1 if state == "relapsed" else level
        rules = self.settings.for_hall(e.hall)
        summary = messages.summary(
            alert=e.alert,
            state=state,
            hall_name=rules.name or e.hall,
            subject=e.subject,
            figures=figs,
            peak=peak,
            duration_s=view.now - e.since,
            reason=reason,
        )
        e.summary = summary
        return Transition(
            at=view.now,
            hall=e.hall,
            alert=e.alert,
            subject=e.subject,
            alert_id=e.alert_id,
            state=state,
            level=level,
            recipients=self.settings.roles_for(to_level, e.alert),
            summary=summary,
            started_at=e.since,
            ordinal=ordinal,
            figures=figs,
            peak=peak,
            reason=reason,
            local_time=self.local(view.now).strftime("%H:%M"),
            event_at=view.last_event_at,
        )

    def _resolve(
        self,
        key: tuple[str, str, str],
        view: HallView,
        figs: Figures,
        reason: str,
        *,
        keep: bool = False,
    ) -> list[Transition]:
        """End an episode; `keep`: hold it as `resolved`, so that a relapse continues it."""
        e = self.episodes.pop(key)
        if e.phase != "firing":
            return []
        out = [self._emit(e, view, "resolved", figs, reason=reason, ordinal=e.relapses + 1)]
        if keep:
            e.phase, e.resolved_at, e.relapse_since, e.clear_since = (
                "resolved",
                view.now,
                None,
                None,
            )
            self.episodes[key] = e
        return out

    def _tick_firing(
        self,
        e: Episode,
        view: HallView,
        figs: Figures,
        want_level: int,
        repeat_s: float,
        delay_s: float,
    ) -> list[Transition]:
        """Escalate when the level rises, otherwise repeat while unacknowledged.

        Repeats keep to a grid of `repeat_s` from the earliest moment the episode could fire
        (its start + the rule's `delay_s`): repeat k is due at `since + delay_s + k * repeat_s`,
        and k is its ordinal. Every instance sharing the outbox derives the same k from the
        same start (one voice: the same key), whenever it joined the episode. A repeat comes
        at least half a period after any other notification of the episode (an escalation)."""
        if e.quiet:
            return []
        if want_level > e.level:
            e.level = want_level
            e.last_level_change = view.now
            return [self._emit(e, view, "escalated", figs, ordinal=want_level)]
        if e.acked_at is None and repeat_s > 0:
            slot = int((view.now - e.since - delay_s) // repeat_s)
            if slot >= 1 and slot > e.repeat_slot and view.now - e.last_notified >= repeat_s / 2:
                e.repeat_slot = slot
                return [self._emit(e, view, "repeat", figs, ordinal=slot)]
        return []

    def _queue_peak(self, view: HallView, rules: HallRules, open_now: bool) -> list[Transition]:
        r = rules.queue_peak
        key = (view.hall, "queue_peak", "")
        crossed: list[Crossing] = []
        if view.headcount >= r.headcount:
            crossed.append(Crossing("headcount", view.headcount, r.headcount))
        crossed += wait_crossings(view, r.wait_s)
        figs = figures(view, crossed)
        down = [s for s, (st, _) in sorted(view.systems.items()) if st == "down"]
        waits = [w for w in view.est_wait_s_by_service.values() if w is not None]
        worst = max([*waits, *view.endured_s_by_service.values()], default=0.0)
        clear = view.headcount < r.clear_headcount and worst < r.clear_wait_s
        far = view.headcount >= r.escalate_headcount or worst >= r.escalate_wait_s
        e = self.episodes.get(key)
        if e is not None and e.phase == "resolved":
            return self._relapse(key, e, view, r, figs, bool(crossed and open_now))

        if e is None or e.phase == "pending":
            if not open_now or not crossed:
                self.episodes.pop(key, None)
                return []
            if e is None:
                e = self.episodes[key] = Episode(view.hall, "queue_peak", "", "pending", view.now)
            if view.now - e.since < r.for_s:
                return []
            e.phase = "firing"
            e.level = 2 if far or view.now - e.since >= r.escalate_after_s else 1
            e.last_level_change = view.now
            self._peak(e, view)
            e.outage = sorted(set(e.outage) | set(down))
            return [self._emit(e, view, "firing", with_outage(figs, e.outage))]

        self._peak(e, view)
        e.outage = sorted(set(e.outage) | set(down))
        figs = with_outage(figs, e.outage)
        if not open_now:
            return self._resolve(key, view, figs, "closed")
        if clear:
            e.clear_since = view.now if e.clear_since is None else e.clear_since
            if view.now - e.clear_since >= r.clear_for_s:
                return self._resolve(key, view, figs, "cleared", keep=r.relapse_s > 0)
            return []
        e.clear_since = None
        long = view.now - e.since >= r.escalate_after_s
        return self._tick_firing(e, view, figs, 2 if (far or long) else 1, r.repeat_s, r.for_s)

    def _relapse(
        self,
        key: tuple[str, str, str],
        e: Episode,
        view: HallView,
        r: PeakRule,
        figs: Figures,
        crossing: bool,
    ) -> list[Transition]:
        """A cleared peak held for `relapse_s`: crossing again for `for_s` reopens it."""
        assert e.resolved_at is not None
        if not crossing:
            e.relapse_since = None
            if view.now - e.resolved_at >= r.relapse_s or not self.in_hours(view):
                del self.episodes[key]
            return []
        if e.relapse_since is None:
            if view.now - e.resolved_at >= r.relapse_s:
                del self.episodes[key]  # too late to be a relapse: a new episode begins
                return self._queue_peak(view, self.settings.for_hall(view.hall), True)
            e.relapse_since = view.now
        if view.now - e.relapse_since < r.for_s:
            return []
        e.phase, e.resolved_at, e.relapse_since = "firing", None, None
        e.relapses, e.quiet = e.relapses + 1, False
        self._peak(e, view)
        return [self._emit(e, view, "relapsed", with_outage(figs, e.outage), ordinal=e.relapses)]

    def _peak(self, e: Episode, view: HallView) -> None:
        e.peak_headcount = max(e.peak_headcount, view.headcount)
        wait, service = max_wait(view)
        if wait is not None and (e.peak_wait_s is None or wait > e.peak_wait_s):
            e.peak_wait_s, e.peak_wait_service = wait, service
        waited, where = max_endured(view)
        if waited is not None and (e.peak_endured_s is None or waited > e.peak_endured_s):
            e.peak_endured_s, e.peak_endured_service = waited, where

    def _subject_rule(
        self,
        view: HallView,
        alert: str,
        subject: str,
        down: bool,
        since: float,
        rule: DeviceRule | SystemRule | DegradedRule | UncoveredRule,
        open_now: bool,
        figs: Figures,
    ) -> list[Transition]:
        """Shared by device_offline and system_outage: down for `after_s` fires, up clears."""
        key = (view.hall, alert, subject)
        e = self.episodes.get(key)
        gated = rule.opening_hours_only and not open_now
        if e is None:
            if down and not gated and view.now - since >= rule.after_s:
                e = self.episodes[key] = Episode(view.hall, alert, subject, "firing", since)
                e.level = 2 if view.now - since >= rule.escalate_after_s else 1
                return [self._emit(e, view, "firing", figs)]
            return []
        if gated:
            return self._resolve(key, view, figs, "closed")
        if not down:
            if view.now - since >= rule.clear_for_s:
                return self._resolve(key, view, figs, "cleared")
            return []
        long = view.now - e.since >= rule.escalate_after_s
        return self._tick_firing(e, view, figs, 2 if long else 1, rule.repeat_s, rule.after_s)

    def _devices(self, view: HallView, rule: DeviceRule, open_now: bool) -> list[Transition]:
        out: list[Transition] = []
        seen: set[str] = set()
        base = figures(view)
        for d in view.devices:
            seen.add(d.device)
            figs = replace(base, device_kind=d.kind)
            out += self._subject_rule(
                view, "device_offline", d.device, not d.up, d.since, rule, open_now, figs
            )
        for key in [k for k in self.episodes if k[0] == view.hall and k[1] == "device_offline"]:
            if key[2] not in seen:  # the device was removed from the hall
                out += self._resolve(key, view, base, "gone")
        return out

    def _systems(self, view: HallView, rule: SystemRule, open_now: bool) -> list[Transition]:
        out: list[Transition] = []
        base = figures(view)
        for system, (state, since) in sorted(view.systems.items()):
            figs = replace(base, system_state=state)
            out += self._subject_rule(
                view, "system_outage", system, state == "down", since, rule, open_now, figs
            )
        for key in [k for k in self.episodes if k[0] == view.hall and k[1] == "system_outage"]:
            if key[2] not in view.systems:
                out += self._resolve(key, view, base, "gone")
        return out

    def _degraded(self, view: HallView, rule: DegradedRule, open_now: bool) -> list[Transition]:
        """system_degraded: slow, not down (信息网络不畅); a system going down ends it (the
        outage takes over) and so does one no longer reported."""
        out: list[Transition] = []
        base = figures(view)
        for system, (state, since) in sorted(view.systems.items()):
            figs = replace(base, system_state=state)
            bad = state == "degraded"
            out += self._subject_rule(
                view, "system_degraded", system, bad, since, rule, open_now, figs
            )
        for key in [k for k in self.episodes if k[0] == view.hall and k[1] == "system_degraded"]:
            if key[2] not in view.systems:
                out += self._resolve(key, view, base, "gone")
        return out

    def _uncovered(
        self, view: HallView, rule: UncoveredRule, open_now: bool, lunch: tuple[str, ...] = ()
    ) -> list[Transition]:
        """service_uncovered: customers wait and no open window serves their service; in a
        slot of the lunch rotation the message names it (`lunch`)."""
        out: list[Transition] = []
        base = replace(figures(view), lunch=lunch)
        held = {k[2] for k in self.episodes if k[0] == view.hall and k[1] == "service_uncovered"}
        for service in sorted(set(view.uncovered_since) | held):
            since = view.uncovered_since.get(service)
            e = self.episodes.get((view.hall, "service_uncovered", service))
            if since is None and e is not None:
                e.clear_since = view.now if e.clear_since is None else e.clear_since
            elif e is not None:
                e.clear_since = None
            figs = replace(
                base,
                service_waiting=view.waiting_by_service.get(service, 0),
                uncovered_s=0.0 if since is None else view.now - since,
                service_endured_s=view.endured_s_by_service.get(service),
            )
            went = since if since is not None else (e.clear_since if e else None) or view.now
            out += self._subject_rule(
                view, "service_uncovered", service, since is not None, went, rule, open_now, figs
            )
        return out
