"""The centre overview on the daemon's HTTP side: GET /overview (the page) and GET /api/overview
(the model as JSON, scope `overview:read`).

The token never travels in a URL the server sees. The page is a static shell with no data, public
like the hall screen; the duty officer opens `/overview#token=<token>`. A fragment is never sent
to a server (so it is in no access log, proxy log or Referer), the page moves it to the browser's
localStorage, removes it from the address bar, and sends it as `Authorization: Bearer` when it
polls /api/overview every 5 s. Without a token, or after a 401/403, the page asks for one.

The page's only script is inline; the Content-Security-Policy allows exactly that script (by its
SHA-256) and nothing else: no other script, no connection but to the daemon itself, no frames.
Hall, service and device names come from the wire, and the page writes them with `textContent`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from hallwatch.alerts.service import Alerts
from hallwatch.alerts.view import HallView
from hallwatch.daemon.config.alerts import AlertSettings
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.estimate.advice import Advice
from hallwatch.daemon.pipeline.views import hall_view
from hallwatch.daemon.staff.complaint_desk import ComplaintDesk
from hallwatch.daemon.staff.complaints import HallCounts
from hallwatch.daemon.staff.outage import Callbacks
from hallwatch.daemon.web.overview_model import Model, hall_model, overview_model

PAGE = Path(__file__).resolve().parent / "static" / "overview.html"
POLL_S = 5


class Source(Protocol):
    """What the overview reads of the running daemon (`main.Daemon` is one)."""

    @property
    def state(self) -> HallsState: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def alert_settings(self) -> AlertSettings: ...
    @property
    def calendar(self) -> WorkCalendar: ...
    @property
    def alerts(self) -> Alerts | None: ...
    @property
    def complaints(self) -> ComplaintDesk | None: ...
    @property
    def callbacks(self) -> Callbacks | None: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    def advice(self, hall: str, *, fresh: bool = False) -> Advice | None: ...


def live_model(src: Source) -> Callable[[], Model]:
    """`overview_model` of the running daemon: the same hall views the alert tick builds (the
    advice cached by the daemon, so a poll does not recompute it), the firing episodes, and the
    complaint and call-back registers' figures."""

    def model() -> Model:
        now = src.clock()
        st = src.state
        hb = src.settings.hall.heartbeat_timeout_s
        views = {
            name: hall_view(
                st,
                name,
                now,
                advice=src.advice(name),
                heartbeat_timeout_s=hb,
                calendar=src.calendar,
            )
            for name in st.halls
        }
        desk, cbs, alerts = src.complaints, src.callbacks, src.alerts
        return overview_model(
            st,
            views,
            alerts.engine.firing() if alerts is not None else (),
            now,
            rules=src.alert_settings.rules,
            service_names=src.alert_settings.service_names,
            complaints=desk.counts(now) if desk is not None else None,
            callbacks=cbs.tally if cbs is not None else None,
            outages=cbs.outages(now) if cbs is not None else None,
        )

    return model


def hall_rows(src: Source, views: Iterable[HallView]) -> Iterator[tuple[str, Model]]:
    """Each view's hall row of the overview (`hall_model`, at the view's instant), one at a
    time: what a shard publishes for the other shards' overviews (web/overview_share.py)."""
    desk, cbs, alerts = src.complaints, src.callbacks, src.alerts
    rules, names = src.alert_settings.rules, src.alert_settings.service_names
    episodes = alerts.engine.firing() if alerts is not None else []
    counts: dict[str, HallCounts] | None = None
    for view in views:
        if counts is None:
            counts = desk.counts(view.now) if desk is not None else {}
        yield (
            view.hall,
            hall_model(
                src.state,
                view.hall,
                view,
                episodes,
                view.now,
                rules=rules,
                service_names=names,
                complaints=counts.get(view.hall),
                callbacks=cbs.tally.get(view.hall) if cbs is not None else None,
                outage=cbs.status(view.hall, view.now) if cbs is not None else None,
            ),
        )


def page_headers(html: bytes) -> Mapping[str, str]:
    """The page's headers: a CSP that admits its one inline script by hash, and nothing else."""
    m = re.search(rb"<script>(.*?)</script>", html, flags=re.S)
    assert m is not None, "overview.html has no inline script"
    digest = base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode()
    csp = (
        "default-src 'none'; "
        f"script-src 'sha256-{digest}'; "
        "style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }


def add_routes(app: web.Application, model: Callable[[], Model]) -> None:
    """Mount GET /overview (the page, public: it holds no data) and GET /api/overview."""
    html = PAGE.read_bytes()
    headers = page_headers(html)

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=html, content_type="text/html", charset="utf-8", headers=headers)

    def dumps(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False)

    async def api(request: web.Request) -> web.Response:
        return web.json_response(model(), dumps=dumps, headers={"Cache-Control": "no-store"})

    app.router.add_get("/overview", page)
    app.router.add_get("/api/overview", api)
