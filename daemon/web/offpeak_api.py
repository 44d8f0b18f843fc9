"""GET /api/offpeak/{hall}: the quiet and busy hours of the coming days a hall has learned (the
plan's 高低峰时段提醒), for staff pages and the hall screen's own quiet slots. Only working days
and the hall's own opening hours (`[hours]`) are offered; a hall without history of its own gets
the centre's, or the typical day's, and the body says which (`source_text`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from hallwatch.daemon.core.hours import Timetable
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.estimate import offpeak
from hallwatch.daemon.estimate.model import Estimator


def wait_table(estimator: Estimator, hall: str) -> offpeak.WaitTable:
    """The hall's learned waits by weekday and hour; an empty table before it learned any."""
    return estimator.learned.waits.get(hall, offpeak.WaitTable())


def hall_guidance(
    estimator: Estimator,
    hall: str,
    now: float,
    *,
    tz: str,
    calendar: WorkCalendar,
    hours: Timetable,
) -> dict[str, Any]:
    """`offpeak.hall_guidance` of the running daemon: the hall's learned waits, the other
    halls' as its fallback, its hours."""
    waits = estimator.learned.waits
    others = (t for name, t in waits.items() if name != hall)
    return offpeak.hall_guidance(
        wait_table(estimator, hall),
        others,
        now,
        hours=hours.for_hall(hall),
        tz=tz,
        calendar=calendar,
    )


def add_routes(
    app: web.Application,
    *,
    state: Callable[[], HallsState],
    estimator: Callable[[], Estimator],
    clock: Callable[[], float],
    calendar: WorkCalendar,
    hours: Timetable | None = None,
) -> None:
    """Mount GET /api/offpeak/{hall} (404 for a hall the state does not know)."""
    timetable = hours or Timetable()

    async def guidance(request: web.Request) -> web.Response:
        hall = request.match_info["hall"]
        st = state()
        if hall not in st.halls:
            return web.json_response({"error": "unknown hall"}, status=404)
        body = hall_guidance(
            estimator(), hall, clock(), tz=st.tz, calendar=calendar, hours=timetable
        )
        return web.json_response({"hall": hall, **body}, dumps=_dumps)

    app.router.add_get("/api/offpeak/{hall}", guidance)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
