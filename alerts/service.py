"""The alert service: runs the rules on hall views, routes transitions to recipients, stores
the notifications (with the engine's state) in the outbox, and takes acknowledgements and
Alertmanager webhooks. The daemon calls `evaluate` on every tick; the dispatcher sends.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hallwatch.alerts import acklink, drill, messages
from hallwatch.alerts.acklink import AckDetail, AckLinks
from hallwatch.alerts.channels.alertmanager import postable
from hallwatch.alerts.messages import AckRef, Names
from hallwatch.alerts.metrics import AlertMetrics
from hallwatch.alerts.outbox import NewNotification, Outbox, recipient_key
from hallwatch.alerts.rules import Episode, RuleEngine
from hallwatch.alerts.view import HallView, Transition
from hallwatch.daemon.config.alerts import AlertSettings, Role

log = logging.getLogger("hallwatch.alerts")
STATE_NAME = "rules"


class Alerts:
    """Use `await Alerts(...).start()` once, then `evaluate(views)` on every tick."""

    def __init__(
        self,
        settings: AlertSettings,
        outbox: Outbox,
        *,
        clock: Callable[[], float],
        metrics: AlertMetrics | None = None,
        links: AckLinks | None = None,
    ) -> None:
        """`links`: the acknowledgement links and codes messages carry (none without)."""
        self.settings = settings
        self.links = links
        self.outbox = outbox
        self.engine = RuleEngine(settings.rules)
        self._clock = clock
        self._metrics = metrics
        self._am_sent: dict[str, float] = {}
        self._saved = b""

    async def start(self) -> None:
        """Restore the episodes saved with the last notifications (no re-firing on restart)."""
        blob = await self.outbox.load_state(STATE_NAME)
        self.engine.restore(blob)
        self._saved = blob or b""
        self._publish()

    def now(self) -> float:
        return self._clock()

    def names(self, hall: str) -> Names:
        return Names(self.settings.rules.for_hall(hall).name or hall, self.settings.service_names)

    # --- the tick ---------------------------------------------------------------------------

    async def evaluate(self, views: Iterable[HallView]) -> list[Transition]:
        """Run the rules; store the resulting notifications and the new state; return them."""
        transitions: list[Transition] = []
        now = self._clock()
        await self._peer_acks()
        before = self.engine.snapshot()
        for view in views:
            transitions += self.engine.evaluate(view)
            now = max(now, view.now)
        try:
            transitions = [v for t in transitions if (v := await self._one_voice(t)) is not None]
        except BaseException:
            self.engine.restore(before)  # as when the enqueue fails: the next tick again
            raise
        notes: dict[str, NewNotification] = {}
        for t in transitions:
            log.info(
                "alert %s %s level %d: %s",
                t.alert_id,
                t.state,
                t.level,
                t.summary,
                extra={"hall": t.hall, "alert": t.alert_id},
            )
            for n in self.route(t):
                notes[n.key] = n
        for n in self._am_resends(now):
            notes.setdefault(n.key, n)
        snap = self.engine.snapshot()
        # Every change of the episodes is stored, not only transitions: a pending peak that was
        # dropped, or a clearing that began, must survive a crash, or the restarted daemon
        # would fire early and under another alert id (a second notification of one episode).
        # Episodes change a few times a tick at most: one small transaction.
        if notes or snap != self._saved:
            try:
                await self.outbox.enqueue(list(notes.values()), now=now, state=(STATE_NAME, snap))
            except BaseException:
                # Not stored, so not sent: forget this tick's transitions too, so the next
                # tick finds the same crossings and stores them then (store, then act).
                self.engine.restore(before)
                raise
            self._saved = snap
        self._publish()
        return transitions

    async def _peer_acks(self) -> None:
        """An alert acknowledged through another instance of the pair stops repeating here too
        (the shared acknowledgement log); nothing to read alone."""
        open_ids = [e.alert_id for e in self.engine.firing() if e.acked_at is None]
        if open_ids:
            for alert_id, (by, at) in (await self.outbox.peer_acks(open_ids)).items():
                self.engine.ack(alert_id, by, at)

    async def _one_voice(self, t: Transition) -> Transition | None:
        """An episode as the instances sharing the outbox know it. One that another instance
        began a tick earlier keeps its start, so both make the same alert id and the same keys
        (`{alert_id}/{ordinal}-{state}/...`). One that another instance has already resolved
        while this one still holds it (it restarted, or fell behind) neither repeats nor
        escalates here (None): it is kept quiet until it ends here too (`RuleEngine.quiet`); so
        is one this instance fires when the other has already fired and ended it (this one is
        behind on its backlog: its view's event time lies within the ended episode's). A
        relapse and a resolution take their number from the relapses counted in the shared
        record, whatever this instance saw of them (alerts/claims.py).
        Alone (SQLite) nothing changes."""
        ep = (t.hall, t.alert, t.subject, t.started_at)
        if t.state in ("resolved", "relapsed"):  # numbered by the relapses the pair counted
            mark = (
                self.outbox.episode_ended if t.state == "resolved" else self.outbox.episode_reopened
            )
            n = await mark(*ep, at=t.at, event_at=t.event_at, own=t.ordinal)
            return replace(t, ordinal=n)
        if t.state in ("repeat", "escalated") and not await self.outbox.episode_open(*ep):
            self.engine.quiet(t.hall, t.alert, t.subject)
            log.info("alert %s was resolved by another instance: quiet here", t.alert_id)
            return None
        if t.state != "firing":
            return t
        since, ended = await self.outbox.episode_join(*ep, t.event_at)
        e = self.engine.rebase(t.hall, t.alert, t.subject, since)
        if e is not None and ended:  # this instance is behind: the other fired and ended it
            self.engine.quiet(t.hall, t.alert, t.subject)
            log.info("alert %s is %s, already ended by another instance", t.alert_id, e.alert_id)
            return None
        if since == t.started_at or e is None:
            return t
        log.info("alert %s is %s, begun by another instance", t.alert_id, e.alert_id)
        return replace(t, alert_id=e.alert_id, started_at=since)

    def _publish(self) -> None:
        if self._metrics is not None:
            self._metrics.firing = [(e.hall, e.alert, e.level) for e in self.engine.firing()]

    def route(self, t: Transition) -> list[NewNotification]:
        """The notifications of one transition: per role of its level, per channel target."""
        names = self.names(t.hall)
        roles = self.roles_of(t.hall)
        base = f"{t.alert_id}/{t.ordinal}-{t.state}"
        out: dict[str, NewNotification] = {}
        mentions: dict[str, list[str]] = {}
        userids: dict[str, list[str]] = {}
        acks: dict[str, list[AckRef]] = {}
        for role_name in t.recipients:
            role = roles.get(role_name)
            if role is None or t.alert not in role.alerts:
                continue
            ref = self._ack_ref(t, role_name)
            on_duty = self._on_duty_userids(t, role_name)
            for robot in role.wecom:
                userids.setdefault(robot, []).extend((*role.mention_userids, *on_duty))
                if ref is not None:
                    acks.setdefault(robot, []).append(ref)
                if role.mention_mobiles:
                    mentions.setdefault(robot, []).extend(role.mention_mobiles)
            for phone in role.sms:
                key = recipient_key(base, "sms", phone)
                out[key] = NewNotification(
                    key,
                    "sms",
                    phone,
                    {
                        "text": messages.sms_text(t, names, ref.code if ref else ""),
                        "params": messages.sms_params(t, names),
                    },
                )
            for hook in role.webhooks:
                key = recipient_key(base, "webhook", hook)
                out[key] = NewNotification(key, "webhook", hook, self.webhook_body(t, key))
        for robot, ids in userids.items():
            key = recipient_key(base, "wecom", robot)
            content = messages.wecom_markdown(
                t, names, tuple(dict.fromkeys(ids)), acks.get(robot, ())
            )
            out[key] = NewNotification(
                key, "wecom", robot, {"msgtype": "markdown", "content": content}
            )
        for robot, mobiles in mentions.items():
            key = recipient_key(base, "wecom-at", robot)
            out[key] = NewNotification(
                key,
                "wecom",
                robot,
                {
                    "msgtype": "text",
                    "content": messages.wecom_mention(t, names),
                    "mentioned_mobile_list": list(dict.fromkeys(mobiles)),
                },
            )
        am = self.settings.alertmanager
        if am.url:
            key = f"{base}/alertmanager"
            ends = t.at if t.state == "resolved" else t.at + 4 * am.resend_s
            alert = postable(
                alert=t.alert,
                hall=t.hall,
                subject=t.subject,
                level=t.level,
                alert_id=t.alert_id,
                summary=t.summary,
                started_at=t.started_at,
                ends_at=ends,
                generator_url=am.generator_url,
                hall_name=names.hall,
            )
            out[key] = NewNotification(key, "alertmanager", "", {"alerts": [alert]})
            if t.state == "resolved":
                self._am_sent.pop(t.alert_id, None)
            elif not drill.is_drill(t.hall):
                self._am_sent[t.alert_id] = t.at
        return drill.mark(out.values()) if drill.is_drill(t.hall) else list(out.values())

    def _ack_ref(self, t: Transition, role: str) -> AckRef | None:
        """How `role` acknowledges `t` from the phone page (None: resolved, or no links)."""
        if self.links is None or t.state == "resolved":
            return None
        return AckRef(
            role,
            self.links.link(t.alert_id, role, t.hall, t.at),
            self.links.code(t.alert_id, role, t.hall),
            self.links.entry_url(),
        )

    def _on_duty_userids(self, t: Transition, role: str) -> list[str]:
        """The WeCom ids of the role's people on duty (the roster, `[duty]`) when `t` happened:
        they are @mentioned besides the role's own `mention_userids`."""
        if self.links is None or t.state == "resolved":
            return []
        local = datetime.fromtimestamp(t.at, ZoneInfo(self.settings.rules.timezone))
        return [p.wecom for p in self.links.duty.on_duty(t.hall, role, local).values() if p.wecom]

    def roles_of(self, hall: str) -> Mapping[str, Role]:
        """Who the hall's alerts and notices may reach: a drill hall only its own roles."""
        if drill.is_drill(hall):
            own = self.settings.rules.halls.get(hall)
            return own.roles if own is not None else {}
        return self.settings.roles_in(hall)

    @staticmethod
    def webhook_body(t: Transition, key: str) -> dict[str, Any]:
        return {
            "version": "1",
            "key": key,
            "at": t.at,
            "hall": t.hall,
            "alert": t.alert,
            "subject": t.subject,
            "alert_id": t.alert_id,
            "state": t.state,
            "level": t.level,
            "recipients": list(t.recipients),
            "summary": t.summary,
            "started_at": t.started_at,
            "figures": asdict(t.figures),
            "peak": asdict(t.peak) if t.peak else None,
        }

    def _am_resends(self, now: float) -> list[NewNotification]:
        """Alertmanager forgets an alert at its endsAt: re-post firing ones every resend_s."""
        am = self.settings.alertmanager
        if not am.url:
            return []
        out = []
        for e in self.engine.firing():
            if drill.is_drill(e.hall):
                continue
            if now - self._am_sent.get(e.alert_id, float("-inf")) < am.resend_s:
                continue
            self._am_sent[e.alert_id] = now
            # Keyed by the resend period, not the second: a pair's instances resend under one key.
            slot = int(now // am.resend_s)
            out.append(self._am_note(e, now, f"{e.alert_id}/am-resend/{slot}"))
        return out

    def _am_note(self, e: Episode, now: float, key: str) -> NewNotification:
        am = self.settings.alertmanager
        alert = postable(
            alert=e.alert,
            hall=e.hall,
            subject=e.subject,
            level=e.level,
            alert_id=e.alert_id,
            summary=e.summary,
            started_at=e.since,
            ends_at=now + 4 * am.resend_s,
            generator_url=am.generator_url,
            hall_name=self.names(e.hall).hall,
        )
        return NewNotification(key, "alertmanager", "", {"alerts": [alert]})

    # --- notices: procedures other than the rules (complaints, the calendar) -----------------

    def notice(
        self,
        *,
        kind: str,
        key: str,
        hall: str,
        roles: Sequence[str],
        title: str,
        lines: Sequence[str],
        sms: str,
    ) -> list[NewNotification]:
        """The notifications of a notice to `roles` (those that take `kind`): markdown to their
        WeCom robots, `sms` (cut to one segment) to their phones. `key` is the idempotency key."""
        out: dict[str, NewNotification] = {}
        userids: dict[str, list[str]] = {}
        role_map = self.roles_of(hall) if hall else self.settings.roles
        text = sms if len(sms) <= messages.SMS_MAX else sms[: messages.SMS_MAX - 1] + "…"
        for role_name in roles:
            role = role_map.get(role_name)
            if role is None or kind not in role.alerts:
                continue
            for robot in role.wecom:
                userids.setdefault(robot, []).extend(role.mention_userids)
            for phone in role.sms:
                params = {"hall": self.names(hall).hall[:20], "event": title[:20], "detail": ""}
                sms_key = recipient_key(key, "sms", phone)
                out[sms_key] = NewNotification(
                    sms_key, "sms", phone, {"text": text, "params": params}
                )
        for robot, ids in userids.items():
            body = [f'## <font color="warning">{title}</font>', *lines]
            if ids:
                body.append(" ".join(f"<@{u}>" for u in dict.fromkeys(ids)))
            content = messages.fit_bytes("\n".join(body), messages.WECOM_MARKDOWN_MAX)
            wecom_key = recipient_key(key, "wecom", robot)
            out[wecom_key] = NewNotification(
                wecom_key, "wecom", robot, {"msgtype": "markdown", "content": content}
            )
        return drill.mark(out.values()) if drill.is_drill(hall) else list(out.values())

    async def send_notice(
        self,
        *,
        kind: str,
        key: str,
        hall: str,
        roles: Sequence[str],
        title: str,
        lines: Sequence[str],
        sms: str,
        now: float,
    ) -> int:
        """Store a notice's notifications in the outbox; returns how many were new."""
        notes = self.notice(
            kind=kind, key=key, hall=hall, roles=roles, title=title, lines=lines, sms=sms
        )
        log.info(
            "notice %s to %s: %s", key, ",".join(roles), title, extra={"hall": hall, "event": key}
        )
        return await self.outbox.enqueue(notes, now=now) if notes else 0

    # --- the API ----------------------------------------------------------------------------

    def active(self) -> list[dict[str, Any]]:
        return [
            {
                "alert_id": e.alert_id,
                "hall": e.hall,
                "alert": e.alert,
                "subject": e.subject,
                "level": e.level,
                "since": e.since,
                "summary": e.summary,
                "acked_by": e.acked_by,
                "acked_at": e.acked_at,
            }
            for e in self.engine.firing()
        ]

    async def ack(self, alert_id: str, by: str) -> Episode | None:
        """Acknowledge; stops repeats of this episode. None when no such alert is firing."""
        now = self._clock()
        e = self.engine.ack(alert_id, by, now)
        if e is not None:
            await self.outbox.record_ack(
                e.alert_id,
                e.hall,
                e.alert,
                e.subject,
                e.since,
                e.acked_by or by,
                e.acked_at or now,
            )
            snap = self.engine.snapshot()
            await self.outbox.save_state(STATE_NAME, snap, now)
            self._saved = snap
            log.info("alert %s acknowledged by %s", alert_id, by)
        return e

    async def ack_from_page(self, d: AckDetail, by: str) -> tuple[Episode | None, bool]:
        """Acknowledge from the phone page as a rostered person: stored (who, role, windows,
        note), then answered. Returns the episode (None if not firing) and whether this call
        acknowledged it (False: someone had already; nothing is changed)."""
        e = self.engine.find(d.alert_id)
        if e is None or e.acked_at is not None:
            return e, False
        e = await self.ack(d.alert_id, by)
        if e is None:
            return None, False
        await acklink.record(self.outbox, d)
        return e, True

    async def forward(self, payload: Mapping[str, Any]) -> int:
        """Queue WeCom and SMS notifications for an Alertmanager webhook payload (version 4).

        Returns how many notifications were new. Raises ValueError for a malformed payload.
        """
        if str(payload.get("version")) != "4" or not isinstance(payload.get("alerts"), list):
            raise ValueError('expected an Alertmanager webhook payload, version "4"')
        now = self._clock()
        fw = self.settings.forward
        bucket = int(now // fw.dedupe_s)
        roles = self.settings.roles
        notes: dict[str, NewNotification] = {}
        for alert in payload["alerts"]:
            if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
                raise ValueError("every alert needs a labels object")
            if alert["labels"].get("source") == "hallwatch" and not fw.include_own:
                continue
            status = str(alert.get("status") or payload.get("status") or "firing")
            ident = (
                alert.get("fingerprint")
                or hashlib.sha1(json.dumps(alert["labels"], sort_keys=True).encode()).hexdigest()[
                    :16
                ]
            )
            base = f"am-forward/{ident}/{status}/{alert.get('startsAt', '')}/{bucket}"
            for role_name in fw.roles:
                role = roles.get(role_name)
                if role is None:
                    continue
                for robot in role.wecom:
                    key = recipient_key(base, "wecom", robot)
                    content = messages.forwarded_markdown(alert, status)
                    if role.mention_userids:
                        content += "\n" + " ".join(f"<@{u}>" for u in role.mention_userids)
                    notes[key] = NewNotification(
                        key, "wecom", robot, {"msgtype": "markdown", "content": content}
                    )
                for phone in role.sms:
                    key = recipient_key(base, "sms", phone)
                    text = messages.forwarded_sms(alert, status)
                    params = {"hall": "", "event": status, "detail": text[:20]}
                    notes[key] = NewNotification(
                        key, "sms", phone, {"text": text, "params": params}
                    )
        if not notes:
            return 0
        return await self.outbox.enqueue(list(notes.values()), now=now)
