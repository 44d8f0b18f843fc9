"""GET /api/offpeak/{hall}: the quiet and busy hours of the coming days a hall has learned (the
plan's 高低峰时段提醒), for staff pages and the hall screen's own quiet slots."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.estimate import offpeak
from hallwatch.daemon.estimate.model import Estimator


def wait_table(estimator: Estimator, hall: str) -> offpeak.WaitTable:
    """The hall's learned waits by weekday and hour; an empty table before it learned any."""
    return estimator.learned.waits.get(hall, offpeak.WaitTable())


def add_routes(
    app: web.Application,
    *,
    state: Callable[[], HallsState],
    estimator: Callable[[], Estimator],
    clock: Callable[[], float],
    calendar: WorkCalendar,
) -> None:
    """Mount GET /api/offpeak/{hall} (404 for a hall the state does not know)."""

    async def guidance(request: web.Request) -> web.Response:
        hall = request.match_info["hall"]
        st = state()
        if hall not in st.halls:
            return web.json_response({"error": "unknown hall"}, status=404)
        table = wait_table(estimator(), hall)
        body = {"hall": hall, **offpeak.guidance(table, clock(), tz=st.tz, calendar=calendar)}
        return web.json_response(body, dumps=_dumps)

    app.router.add_get("/api/offpeak/{hall}", guidance)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
