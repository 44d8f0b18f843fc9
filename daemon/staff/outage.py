"""The information-system outage procedure (plan 4.3) beyond the alert: the hall's outage
status, the call-back register, the SMS to every registered customer when the system is back,
and an optional HTTP health probe.

Outage status is read from the hall state (`hall.systems`, fed by `system` events): a hall is
in outage while any of its systems is `down`, and in call-back mode once that has lasted
`callback_after_s` (the `system_outage` alert's escalation time, the plan's half hour).

Call-backs are stored before the API answers. On recovery each pending call-back's SMS goes
into the alert outbox under the key `callback/{id}` (durable, sent by the dispatcher, a repeat
is a no-op), and only then is the call-back marked notified: a crash in between sends nothing
twice and forgets no one.

The probe does not touch the state: it publishes a contract `system` event to the broker
(`{root}/{hall}/system/{system}`, QoS 1) on every change and every `republish_s`, so the
result is stored, replayed and ordered with every other event exactly as a device's report.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from hallwatch.alerts.outbox import NewNotification, Outbox
from hallwatch.daemon.base.pii import mask_phone
from hallwatch.daemon.config.staff import OutageSettings, Probe
from hallwatch.daemon.core.state import Hall, HallsState
from hallwatch.daemon.staff.complaints import ComplaintError, clean_phone
from hallwatch.daemon.store.files import OnSchema

log = logging.getLogger("hallwatch.outage")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY,
    hall TEXT NOT NULL,
    name TEXT NOT NULL,
    phone TEXT NOT NULL,               -- personal data: stored, shown masked
    registered_at REAL NOT NULL,
    registered_by TEXT NOT NULL,
    systems TEXT NOT NULL,             -- the systems down when registered, comma-separated
    note TEXT NOT NULL DEFAULT '',
    notified_at REAL                   -- when the SMS was put in the outbox
);
CREATE INDEX IF NOT EXISTS callbacks_pending ON callbacks (hall, notified_at);
CREATE TABLE IF NOT EXISTS outage_recovery (
    hall TEXT PRIMARY KEY,
    expected_at REAL NOT NULL,         -- when the information centre expects the system back
    set_by TEXT NOT NULL,
    set_at REAL NOT NULL
);
"""
# In PostgreSQL both tables are the centre's: a call-back registered through one instance is
# sent by whichever sees the system back first (its SMS key `callback/{id}` is one for all).
SHARED = ("callbacks", "outage_recovery")


# --- pure -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutageStatus:
    """A hall with at least one business system down."""

    systems: tuple[str, ...]
    since: float
    callback_mode: bool
    expected_recovery_at: float | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "systems": list(self.systems),
            "since": self.since,
            "callback_mode": self.callback_mode,
            "expected_recovery_at": self.expected_recovery_at,
        }


def outage_status(
    hall: Hall, now: float, callback_after_s: float, expected_at: float | None = None
) -> OutageStatus | None:
    """The hall's outage at `now`, or None when no system is down."""
    down = sorted((name, s.since) for name, s in hall.systems.items() if s.state == "down")
    if not down:
        return None
    since = min(t for _, t in down)
    # An expected time already past is no promise any more: do not show it.
    expected = expected_at if expected_at is not None and expected_at > now else None
    return OutageStatus(tuple(n for n, _ in down), since, now - since >= callback_after_s, expected)


@dataclass(frozen=True, slots=True)
class Callback:
    id: int
    hall: str
    name: str
    phone: str
    registered_at: float
    registered_by: str
    systems: tuple[str, ...]
    note: str = ""
    notified_at: float | None = None

    @property
    def key(self) -> str:
        """The outbox key of its SMS."""
        return f"callback/{self.id}"


def callback_sms(cb: Callback, hall_name: str, template: str) -> NewNotification:
    """The SMS telling a registered customer they can come back."""
    text = template.format(name=cb.name, hall=hall_name)
    text = text if len(text) <= 70 else text[:69] + "…"
    params = {"hall": hall_name[:20], "event": "业务系统已恢复", "detail": "欢迎前来办理"}
    return NewNotification(cb.key, "sms", cb.phone, {"text": text, "params": params})


# --- the register ---------------------------------------------------------------------------


def _row(r: Sequence[Any]) -> Callback:
    return Callback(
        id=r[0],
        hall=r[1],
        name=r[2],
        phone=r[3],
        registered_at=r[4],
        registered_by=r[5],
        systems=tuple(s for s in r[6].split(",") if s),
        note=r[7],
        notified_at=r[8],
    )


_COLS = "id, hall, name, phone, registered_at, registered_by, systems, note, notified_at"


class CallbackStore(OnSchema):
    """The call-back register. Use `async with CallbackStore(path):` (SQLite) or
    `CallbackStore.open(settings.store)` (PostgreSQL when `store.url` is set)."""

    SCHEMA = _SCHEMA
    NAME = "callback store"
    SHARED = SHARED

    async def add(
        self,
        *,
        hall: str,
        name: str,
        phone: str,
        at: float,
        by: str,
        systems: Iterable[str],
        note: str = "",
    ) -> Callback:
        async with self.transaction() as tx:
            row = await tx.fetchone(
                "INSERT INTO callbacks (hall, name, phone, registered_at, registered_by,"
                " systems, note) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (hall, name, phone, at, by, ",".join(systems), note),
            )
        got = await self.get(int(row[0]))
        assert got is not None
        return got

    async def get(self, cb_id: int) -> Callback | None:
        async with self.db.execute(f"SELECT {_COLS} FROM callbacks WHERE id = ?", (cb_id,)) as c:
            row = await c.fetchone()
        return _row(row) if row else None

    async def select(
        self, *, hall: str | None = None, pending: bool | None = None
    ) -> list[Callback]:
        where: list[str] = []
        args: list[Any] = []
        if hall:
            where.append("hall = ?")
            args.append(hall)
        if pending is True:
            where.append("notified_at IS NULL")
        elif pending is False:
            where.append("notified_at IS NOT NULL")
        sql = f"SELECT {_COLS} FROM callbacks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        async with self.db.execute(sql + " ORDER BY id", args) as cur:
            return [_row(r) for r in await cur.fetchall()]

    async def mark_notified(self, ids: Sequence[int], at: float) -> None:
        async with self.transaction() as tx:
            await tx.executemany(
                "UPDATE callbacks SET notified_at = ? WHERE id = ? AND notified_at IS NULL",
                [(at, i) for i in ids],
            )

    async def counts(self) -> dict[str, tuple[int, int]]:
        """Per hall: (pending, notified)."""
        async with self.db.execute(
            "SELECT hall, SUM(CASE WHEN notified_at IS NULL THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN notified_at IS NULL THEN 0 ELSE 1 END) FROM callbacks GROUP BY hall"
        ) as cur:
            return {r[0]: (int(r[1]), int(r[2])) for r in await cur.fetchall()}

    async def set_expected(self, hall: str, at: float | None, by: str, now: float) -> None:
        async with self.transaction() as tx:
            if at is None:
                await tx.execute("DELETE FROM outage_recovery WHERE hall = ?", (hall,))
            else:
                await tx.execute(
                    "INSERT INTO outage_recovery VALUES (?, ?, ?, ?) ON CONFLICT(hall)"
                    " DO UPDATE SET expected_at = excluded.expected_at,"
                    " set_by = excluded.set_by, set_at = excluded.set_at",
                    (hall, at, by, now),
                )

    async def expected(self) -> dict[str, float]:
        async with self.db.execute("SELECT hall, expected_at FROM outage_recovery") as cur:
            return {r[0]: float(r[1]) for r in await cur.fetchall()}


class OutageError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Callbacks:
    """The call-back register over the live hall state, and the SMS on recovery."""

    def __init__(
        self,
        store: CallbackStore,
        outbox: Outbox,
        settings: OutageSettings,
        *,
        state: Callable[[], HallsState],
        callback_after: Callable[[str], float],
        clock: Callable[[], float],
        hall_name: Callable[[str], str] = lambda h: h,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.settings = settings
        self._state = state
        self._after = callback_after
        self.clock = clock
        self.hall_name = hall_name
        self.expected: dict[str, float] = {}
        self.tally: dict[str, tuple[int, int]] = {}  # hall -> (pending, notified), for metrics

    async def start(self) -> None:
        self.expected = await self.store.expected()
        self.tally = await self.store.counts()

    def status(self, hall: str, now: float | None = None) -> OutageStatus | None:
        h = self._state().halls.get(hall)
        if h is None:
            return None
        now = self.clock() if now is None else now
        return outage_status(h, now, self._after(hall), self.expected.get(hall))

    def outages(self, now: float | None = None) -> dict[str, OutageStatus]:
        """Every hall in outage now."""
        now = self.clock() if now is None else now
        out = {}
        for hall in sorted(self._state().halls):
            st = self.status(hall, now)
            if st is not None:
                out[hall] = st
        return out

    async def register(
        self, *, hall: str, name: object, phone: object, by: object, note: object = ""
    ) -> Callback:
        """Register a customer to be called back; OutageError unless the hall is in outage."""
        for field_name, value, limit in (("name", name, 32), ("by", by, 64)):
            if not isinstance(value, str) or not value.strip() or len(value) > limit:
                raise OutageError("missing_field", f"{field_name} is required (≤{limit} chars)")
        if not isinstance(note, str) or len(note) > 500:
            raise OutageError("bad_note", "note must be a string of at most 500 characters")
        try:
            number = clean_phone(phone if isinstance(phone, str) else "x")
        except ComplaintError as err:
            raise OutageError("bad_phone", str(err)) from None
        if number is None:
            raise OutageError("missing_field", "phone is required")
        st = self.status(hall)
        if st is None:
            raise OutageError("no_outage", "no information system of this hall is down")
        assert isinstance(name, str) and isinstance(by, str)
        cb = await self.store.add(
            hall=hall,
            name=name.strip(),
            phone=number,
            at=self.clock(),
            by=by.strip(),
            systems=st.systems,
            note=note,
        )
        self.tally = await self.store.counts()
        log.info("call-back %d registered in %s (%s)", cb.id, hall, mask_phone(cb.phone))
        return cb

    async def set_expected(self, hall: str, at: float | None, by: str) -> None:
        await self.store.set_expected(hall, at, by, self.clock())
        self.expected = await self.store.expected()

    async def tick(self, now: float) -> int:
        """Send the call-back SMS of every hall whose systems are all back; returns how many.
        The register may be shared (PostgreSQL): what another instance registered or set is
        read again here."""
        self.expected = await self.store.expected()
        pending = await self.store.select(pending=True)
        back: dict[str, list[Callback]] = {}
        for cb in pending:
            h = self._state().halls.get(cb.hall)
            if h is not None and outage_status(h, now, self._after(cb.hall)) is None:
                back.setdefault(cb.hall, []).append(cb)
        sent = 0
        for hall, cbs in back.items():
            name = self.hall_name(hall)
            notes = [callback_sms(cb, name, self.settings.callback_text) for cb in cbs]
            await self.outbox.enqueue(notes, now=now)  # store first ...
            await self.store.mark_notified([cb.id for cb in cbs], now)  # ... then record
            sent += len(cbs)
            log.info("system back in %s: %d call-back SMS queued", hall, len(cbs))
        # Only halls this daemon holds: a shared register has other shards' halls too.
        halls = self._state().halls
        for hall in [h for h in self.expected if h in halls and self.status(h, now) is None]:
            await self.store.set_expected(hall, None, "hallwatch", now)  # that outage is over
            self.expected.pop(hall, None)
        self.tally = await self.store.counts()
        return sent

    async def public(self, cb: Callback, *, pii: bool, tz: str) -> dict[str, Any]:
        """A call-back as the API shows it, with its SMS's delivery state from the outbox."""
        note = await self.outbox.get(cb.key) if cb.notified_at is not None else None
        zone = ZoneInfo(tz)
        return {
            "id": cb.id,
            "hall": cb.hall,
            "name": cb.name,
            "phone": cb.phone if pii else mask_phone(cb.phone),
            "registered_at": cb.registered_at,
            "registered_at_local": datetime.fromtimestamp(cb.registered_at, zone).isoformat(
                timespec="seconds"
            ),
            "registered_by": cb.registered_by,
            "systems": list(cb.systems),
            "note": cb.note,
            "notified_at": cb.notified_at,
            # pending: waiting for recovery; queued/sent/dead: the SMS in the outbox
            "sms": "pending"
            if cb.notified_at is None
            else ("queued" if note is None or note.state == "pending" else note.state),
        }


# --- the probe ------------------------------------------------------------------------------


@dataclass
class _ProbeState:
    failures: int = 0
    state: str | None = None
    published_at: float = 0.0


def probe_verdict(ok: bool, st: _ProbeState, failures_needed: int) -> str | None:
    """Pure: the state after one check ("up" at once, "down" after enough failures in a row)."""
    if ok:
        st.failures = 0
        return "up"
    st.failures += 1
    if st.failures >= failures_needed:
        return "down"
    return st.state  # not yet: keep what we said


class HealthProbe:
    """Checks each configured URL and publishes the result as `system` events."""

    def __init__(
        self,
        probes: Sequence[Probe],
        publish: Callable[[str, dict[str, Any]], None],
        session: aiohttp.ClientSession,
        *,
        topic_root: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.probes = probes
        self._publish = publish
        self._session = session
        self._root = topic_root
        self._clock = clock

    async def check(self, probe: Probe) -> tuple[bool, str]:
        try:
            async with self._session.get(
                probe.url, timeout=aiohttp.ClientTimeout(total=probe.timeout_s)
            ) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    return True, ""
                return False, f"HTTP {resp.status}"
        except TimeoutError:
            return False, f"timeout after {probe.timeout_s:g} s"
        except aiohttp.ClientError as err:
            return False, type(err).__name__

    async def run(self) -> None:
        """Probe until cancelled (one task per probe under this one)."""
        if not self.probes:
            await asyncio.Event().wait()
        async with asyncio.TaskGroup() as tg:
            for p in self.probes:
                tg.create_task(self._loop(p), name=f"probe-{p.system}")

    async def _loop(self, probe: Probe) -> None:
        st = _ProbeState()
        while True:
            ok, detail = await self.check(probe)
            now = self._clock()
            state = probe_verdict(ok, st, probe.failures)
            changed = state != st.state
            if state is not None and (changed or now - st.published_at >= probe.republish_s):
                if changed:
                    log.warning("probe %s: %s %s", probe.system, state, detail)
                st.state, st.published_at = state, now
                ms = int(now * 1000)
                for hall in probe.halls:
                    body: dict[str, Any] = {"id": f"probe-{probe.system}:{ms}", "ts": ms}
                    body["state"] = state
                    if detail:
                        body["detail"] = f"health probe: {detail}"
                    self._publish(f"{self._root}/{hall}/system/{probe.system}", body)
            await asyncio.sleep(probe.interval_s)
