"""The staff API on the daemon's aiohttp app: complaints (plan 4.2), call-backs and paper
intake (plan 4.3).

POST /api/v1/complaints                               register           complaints:write
GET  /api/v1/complaints[?hall=&state=&open=1]         list               complaints:read
GET  /api/v1/complaints/{hall}/{id}                   one, with history  complaints:read
POST /api/v1/complaints/{hall}/{id}/transitions       a step             complaints:write
GET  /api/v1/complaints/archive.csv[?hall=&state=&from=&to=]  CSV export complaints:read
POST /api/v1/callbacks                                register           callbacks:write
GET  /api/v1/callbacks[?hall=&pending=1]              list               callbacks:read
GET  /api/v1/outages                                  halls in outage    callbacks:read
PUT  /api/v1/outages/{hall}                           expected recovery  callbacks:write
POST /api/v1/paper                                    paper taken        callbacks:write
GET  /api/v1/paper[?hall=&pending=1]                  to enter (补录)     callbacks:read
POST /api/v1/paper/{id}/entered                       entered            callbacks:write

Who may call which is `config.api`'s route table: a token from `[api.tokens]` with the scope
shown (a write scope includes its read). Phone numbers are masked (138****8000) unless the token
also has `pii:read`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from hallwatch.daemon.base.jsonbody import read_object
from hallwatch.daemon.config import api
from hallwatch.daemon.staff.complaint_desk import ComplaintDesk
from hallwatch.daemon.staff.complaints import ComplaintError
from hallwatch.daemon.staff.outage import Callbacks, OutageError
from hallwatch.daemon.staff.paper import PaperIntake
from hallwatch.daemon.web import auth
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: Dates a query may name: a typo like 9999-12-31 is a 400, not an overflow.
YEARS = range(2000, 2101)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


# A yes/no query parameter: absent or empty is "not asked" (None); anything else is refused.
FLAGS: dict[str, bool | None] = {"": None, "1": True, "true": True, "0": False, "false": False}


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": code, "message": message}, status)


def _when(value: str, tz: str, *, end: bool = False) -> float:
    """A query's date (YYYY-MM-DD, local; `end`: the day after) or RFC 3339 time, as epoch s."""
    zone = ZoneInfo(tz)
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            if d.year in YEARS:
                d = date.fromordinal(d.toordinal() + (1 if end else 0))
                return datetime.combine(d, time(0), zone).timestamp()
        else:
            dt = datetime.fromisoformat(value)
            if dt.year in YEARS:
                return (dt if dt.tzinfo else dt.replace(tzinfo=zone)).timestamp()
    except (ValueError, OverflowError, OSError):
        pass
    raise web.HTTPBadRequest(
        text=_dumps(
            {
                "error": "bad_time",
                "message": f"not a date or time of {YEARS.start}-{YEARS.stop - 1}: {value[:40]!r}",
            }
        ),
        content_type="application/json",
    )


def add_routes(
    app: web.Application,
    *,
    complaints: ComplaintDesk,
    callbacks: Callbacks,
    paper: PaperIntake,
    tz: str = "Asia/Shanghai",
) -> None:
    """Mount the staff endpoints."""

    def pii(request: web.Request) -> bool:
        return auth.allows(request, api.PII)

    _complaint_routes(app, complaints, tz, pii)
    _callback_routes(app, callbacks, tz, pii)
    _paper_routes(app, paper, pii)


_OUTAGE_STATUS = {"no_outage": 409, "already_entered": 409, "not_found": 404}


def _paper_routes(
    app: web.Application, paper: PaperIntake, pii: Callable[[web.Request], bool]
) -> None:
    """Submissions taken on paper during an outage, and their entry once it is over (补录)."""

    async def register(request: web.Request) -> web.StreamResponse:
        b = await read_object(request)
        hall = b.get("hall")
        if not isinstance(hall, str):
            return _error(400, "missing_field", "hall is required")
        try:
            p = await paper.register(
                hall=hall,
                service=b.get("service"),
                name=b.get("name"),
                phone=b.get("phone"),
                documents=b.get("documents"),
                by=b.get("by"),
                note=b.get("note", ""),
            )
        except OutageError as err:
            return _error(_OUTAGE_STATUS.get(err.code, 400), err.code, str(err))
        return _json({"paper": paper.public(p, pii=pii(request))}, 201)

    async def listing(request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("pending", "") not in FLAGS:
            return _error(400, "bad_flag", "pending must be 1, true, 0 or false")
        rows = await paper.store.select(
            hall=q.get("hall") or None, pending=FLAGS[q.get("pending", "")]
        )
        show = pii(request)
        return _json({"paper": [paper.public(p, pii=show) for p in rows]})

    async def entered(request: web.Request) -> web.StreamResponse:
        raw = request.match_info["id"]
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            return _error(404, "not_found", "no such paper submission")
        b = await read_object(request)
        try:
            p = await paper.entered(int(raw), by=b.get("by"), reference=b.get("reference"))
        except OutageError as err:
            return _error(_OUTAGE_STATUS.get(err.code, 400), err.code, str(err))
        return _json({"paper": paper.public(p, pii=pii(request))})

    r = app.router
    r.add_post("/api/v1/paper", register)
    r.add_get("/api/v1/paper", listing)
    r.add_post("/api/v1/paper/{id}/entered", entered)


def _complaint_routes(
    app: web.Application, complaints: ComplaintDesk, tz: str, pii: Callable[[web.Request], bool]
) -> None:
    """Register, list, show, act on and archive complaints."""

    async def register(request: web.Request) -> web.StreamResponse:
        b = await read_object(request)
        now = complaints.clock()
        cid = b.get("complaint_id")
        if cid is None:
            stamp = datetime.fromtimestamp(now, ZoneInfo(tz)).strftime("%Y%m%d-%H%M%S")
            cid = f"{b.get('hall', '')}-{stamp}-{int(now * 1000) % 1000:03d}"
        try:
            c, new = await complaints.register(
                hall=b.get("hall"),
                complaint_id=cid,
                channel=b.get("channel"),
                severity=b.get("severity", "normal"),
                summary=b.get("summary"),
                received_by=b.get("received_by"),
                phone=b.get("phone"),
                department=b.get("department", ""),
            )
        except ComplaintError as err:
            return _error(400, err.code, str(err))
        body = complaints.public(c, pii=pii(request), now=now)
        return _json({"created": new, "complaint": body}, 201 if new else 200)

    async def listing(request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("open", "") not in FLAGS:
            return _error(400, "bad_flag", "open must be 1, true, 0 or false")
        rows = await complaints.store.select(
            hall=q.get("hall") or None,
            state=q.get("state") or None,
            open_only=bool(FLAGS[q.get("open", "")]),
        )
        now = complaints.clock()
        show = pii(request)
        return _json({"complaints": [complaints.public(c, pii=show, now=now) for c in rows]})

    async def one(request: web.Request) -> web.StreamResponse:
        hall, cid = request.match_info["hall"], request.match_info["id"]
        c = await complaints.store.get(hall, cid)
        if c is None:
            return _error(404, "not_found", "no such complaint")
        body = complaints.public(c, pii=pii(request), now=complaints.clock())
        body["history"] = [
            {
                "at": s.at,
                "action": s.action,
                "actor": s.actor,
                "state": s.state,
                "note": s.note,
                "data": dict(s.data),
            }
            for s in await complaints.store.history(hall, cid)
        ]
        return _json(body)

    async def transition(request: web.Request) -> web.StreamResponse:
        hall, cid = request.match_info["hall"], request.match_info["id"]
        b = await read_object(request)
        kw = {
            k: b[k]
            for k in ("note", "proposal", "to_department", "to_person")
            if isinstance(b.get(k), str)
        }
        try:
            c = await complaints.act(hall, cid, str(b.get("action", "")), actor=b.get("by"), **kw)
        except KeyError:
            return _error(404, "not_found", "no such complaint")
        except ComplaintError as err:
            status = 409 if err.code in ("bad_state", "conflict", "bad_transfer") else 400
            return _error(status, err.code, str(err))
        return _json({"complaint": complaints.public(c, pii=pii(request), now=complaints.clock())})

    async def archive(request: web.Request) -> web.StreamResponse:
        q = request.query
        text = await complaints.export_csv(
            pii=pii(request),
            hall=q.get("hall") or None,
            state=q.get("state") or None,
            since=_when(q["from"], tz) if q.get("from") else None,
            until=_when(q["to"], tz, end=True) if q.get("to") else None,
        )
        return web.Response(
            body=text.encode("utf-8"),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="complaints.csv"'},
        )

    r = app.router
    r.add_post("/api/v1/complaints", register)
    r.add_get("/api/v1/complaints", listing)
    r.add_get("/api/v1/complaints/archive.csv", archive)
    r.add_get("/api/v1/complaints/{hall}/{id}", one)
    r.add_post("/api/v1/complaints/{hall}/{id}/transitions", transition)


def _callback_routes(
    app: web.Application, callbacks: Callbacks, tz: str, pii: Callable[[web.Request], bool]
) -> None:
    """Call-backs registered during an outage; the outages and their expected recovery."""

    async def cb_register(request: web.Request) -> web.StreamResponse:
        b = await read_object(request)
        hall = b.get("hall")
        if not isinstance(hall, str):
            return _error(400, "missing_field", "hall is required")
        try:
            cb = await callbacks.register(
                hall=hall,
                name=b.get("name"),
                phone=b.get("phone"),
                by=b.get("by"),
                note=b.get("note", ""),
            )
        except OutageError as err:
            return _error(409 if err.code == "no_outage" else 400, err.code, str(err))
        return _json({"callback": await callbacks.public(cb, pii=pii(request), tz=tz)}, 201)

    async def cb_list(request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("pending", "") not in FLAGS:
            return _error(400, "bad_flag", "pending must be 1, true, 0 or false")
        pending = FLAGS[q.get("pending", "")]
        rows = await callbacks.store.select(hall=q.get("hall") or None, pending=pending)
        show = pii(request)
        return _json({"callbacks": [await callbacks.public(cb, pii=show, tz=tz) for cb in rows]})

    async def outages(request: web.Request) -> web.StreamResponse:
        return _json({"outages": {h: st.payload() for h, st in callbacks.outages().items()}})

    async def set_expected(request: web.Request) -> web.StreamResponse:
        hall = request.match_info["hall"]
        b = await read_object(request)
        by = b.get("by")
        if not isinstance(by, str) or not by.strip():
            return _error(400, "missing_field", "by is required")
        raw = b.get("expected_recovery_at")
        if raw is not None and not isinstance(raw, str):
            return _error(400, "bad_time", "expected_recovery_at: RFC 3339 time or HH:MM")
        at = None
        if raw:
            if len(raw) == 5 and raw[2] == ":":  # HH:MM today, in the hall's time zone
                day = datetime.fromtimestamp(callbacks.clock(), ZoneInfo(tz)).date()
                raw = f"{day.isoformat()}T{raw}"
            at = _when(raw, tz)
        if at is not None and callbacks.status(hall) is None:
            return _error(409, "no_outage", "no information system of this hall is down")
        await callbacks.set_expected(hall, at, by.strip())
        return _json({"hall": hall, "expected_recovery_at": at})

    r = app.router
    r.add_post("/api/v1/callbacks", cb_register)
    r.add_get("/api/v1/callbacks", cb_list)
    r.add_get("/api/v1/outages", outages)
    r.add_put("/api/v1/outages/{hall}", set_expected)


class StaffCollector(Collector):
    """Complaint and call-back figures per hall, from the desk's and register's live data."""

    def __init__(
        self,
        complaints: Callable[[], ComplaintDesk | None],
        callbacks: Callable[[], Callbacks | None],
        clock: Callable[[], float],
        paper: Callable[[], PaperIntake | None] = lambda: None,
    ) -> None:
        self._complaints = complaints
        self._callbacks = callbacks
        self._paper = paper
        self._clock = clock

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        desk, cbs = self._complaints(), self._callbacks()
        fams = {
            "open": GaugeMetricFamily(
                "hallwatch_complaints_open", "Complaints not yet archived.", labels=["hall"]
            ),
            "due_soon": GaugeMetricFamily(
                "hallwatch_complaints_due_soon",
                "Open complaints whose current stage is due within complaints.remind_before_s.",
                labels=["hall"],
            ),
            "overdue": GaugeMetricFamily(
                "hallwatch_complaints_overdue",
                "Open complaints past the deadline of their current stage.",
                labels=["hall"],
            ),
        }
        if desk is not None:
            for hall, c in desk.counts(self._clock()).items():
                fams["open"].add_metric([hall], c.open)
                fams["due_soon"].add_metric([hall], c.due_soon)
                fams["overdue"].add_metric([hall], c.overdue)
        yield from fams.values()
        pending = GaugeMetricFamily(
            "hallwatch_callbacks_pending",
            "Customers registered for a call-back, waiting for the system to recover.",
            labels=["hall"],
        )
        notified = CounterMetricFamily(
            "hallwatch_callbacks_notified",
            "Call-back SMS queued to customers after a recovery (kept across restarts).",
            labels=["hall"],
        )
        if cbs is not None:
            for hall, (p, n) in sorted(cbs.tally.items()):
                pending.add_metric([hall], p)
                notified.add_metric([hall], n)
        yield pending
        yield notified
        yield from self._paper_families()

    def _paper_families(self) -> Iterator[Metric]:
        waiting = GaugeMetricFamily(
            "hallwatch_paper_pending",
            "Submissions taken on paper during an outage, not yet entered into the system.",
            labels=["hall"],
        )
        entered = CounterMetricFamily(
            "hallwatch_paper_entered",
            "Paper submissions entered into the system after an outage (kept across restarts).",
            labels=["hall"],
        )
        intake = self._paper()
        if intake is not None:
            for hall, (p, n) in sorted(intake.tally.items()):
                waiting.add_metric([hall], p)
                entered.add_metric([hall], n)
        yield waiting
        yield entered
