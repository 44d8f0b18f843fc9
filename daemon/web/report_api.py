"""`GET /api/report`: the centre's report over HTTP, computed in a worker thread."""

from __future__ import annotations

import asyncio
import io
import logging
import sqlite3
import zipfile
from pathlib import Path

from aiohttp import web
from hallwatch.daemon.base import pii
from hallwatch.daemon.config.sections import StoreSettings
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.reports import html as report_html
from hallwatch.daemon.reports.figures import Report
from hallwatch.daemon.reports.history import gather
from hallwatch.daemon.reports.inputs import period_of
from hallwatch.daemon.web import auth

log = logging.getLogger("hallwatch.report")

MAX_DAYS_HTTP = 93  # a quarter: the API replays on the daemon's machine, one report at a time


def masked_zip(rep: Report) -> bytes:
    """The report's zip with phone and ID numbers masked in every file."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in report_html.files(rep).items():
            bom = data.startswith(b"\xef\xbb\xbf")
            text = pii.mask_text(data.decode("utf-8-sig"))
            z.writestr(name, (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return buf.getvalue()


def add_routes(app: web.Application, db: str | Path | StoreSettings, settings: Settings) -> None:
    """`GET /api/report?from=YYYY-MM-DD&to=YYYY-MM-DD[&hall=H][&format=html|zip]`.

    The history is `db`: a SQLite file, or the store settings (the daemon's: its SQLite file,
    or PostgreSQL with `store.url`, every instance's events and the centre's registers). The
    report is computed in a worker thread, one at a time, so ingest keeps going. It names staff,
    quotes complaints and costs seconds of CPU per hall-day: `web.auth` asks for
    `reports:read`, and masks phone and ID numbers in the page without `pii:read` (here, too,
    inside the zip, which it cannot read).
    """
    lock = asyncio.Lock()

    def error(status: int, message: str) -> web.Response:
        return web.json_response({"error": message}, status=status)

    async def handler(request: web.Request) -> web.StreamResponse:
        q = request.query
        if "from" not in q or "to" not in q:
            return error(400, "from and to are required (YYYY-MM-DD)")
        try:
            period = period_of(q["from"], q["to"], max_days=MAX_DAYS_HTTP)
        except ValueError as err:
            return error(400, str(err))
        fmt = q.get("format", "html")
        if fmt not in ("html", "zip"):
            return error(400, "format must be html or zip")
        hall = q.get("hall") or None
        async with lock:
            try:
                rep = await asyncio.to_thread(gather, db, period, settings, hall=hall)
            except (OSError, sqlite3.Error) as err:
                log.warning("report failed: %s", err)
                return error(503, "event database unavailable")
            if fmt == "zip":
                show = auth.may_read_pii(request)
                body = await asyncio.to_thread(report_html.zip_bytes if show else masked_zip, rep)
                name = f"hallwatch-report-{period.start}-{period.end}.zip"
                return web.Response(
                    body=body,
                    content_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'},
                )
            html = await asyncio.to_thread(report_html.render, rep)
        return web.Response(
            text=html,
            content_type="text/html",
            charset="utf-8",
            headers={
                # Self-contained: nothing to fetch, nothing to run.
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            },
        )

    app.router.add_get("/api/report", handler)
