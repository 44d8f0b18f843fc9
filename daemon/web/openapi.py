"""The HTTP API as an OpenAPI 3.1 document, served at GET /api/openapi.json and kept in
docs/openapi.json.

The document is built from what the server itself uses: the routes on the aiohttp app, the
scope each needs (`config.api.ROUTES`, `PUBLIC`) and the value sets the handlers check
(`staff.complaints`). `OPERATIONS` adds what a route's code does not say by itself: its summary,
query parameters, request body and answers. `document` refuses an app route without an entry
or an entry without a route, so the description cannot drift from the server (tests/daemon/web
checks it, and runs schemathesis against a real daemon with the document).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from hallwatch.daemon.config import api
from hallwatch.daemon.staff.complaints import ACTIONS, CHANNELS, HALL, ID, PHONE, SEVERITIES
from hallwatch.daemon.web.staff_api import FLAGS

Schema = dict[str, Any]

OBJECT: Schema = {"type": "object"}
TEXT: Schema = {"type": "string"}
ERROR: Schema = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}
# A report's and the archive's days lie in the years 2000-2100 (reports.inputs.YEARS).
DATE: Schema = {
    "type": "string",
    "pattern": r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
}
FLAG: Schema = {"type": "string", "enum": list(FLAGS)}


def _matching(regex: re.Pattern[str]) -> Schema:
    """A string the handler's own regular expression accepts whole."""
    return {"type": "string", "pattern": f"^{regex.pattern}$"}


def _words(limit: int) -> Schema:
    """A required free-text field: not blank, at most `limit` characters."""
    return {"type": "string", "minLength": 1, "maxLength": limit, "pattern": r"\S"}


def _query(name: str, schema: Schema, *, required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _body(props: dict[str, Schema], required: Iterable[str] = ()) -> Schema:
    return {"type": "object", "properties": props, "required": list(required)}


@dataclass(frozen=True, slots=True)
class Operation:
    """What the route's code does not say by itself: summary, inputs, answers."""

    summary: str
    ok: dict[int, dict[str, Schema]]  # status -> content type -> schema
    query: tuple[Schema, ...] = ()
    body: Schema | None = None
    errors: tuple[int, ...] = field(default=(400, 404, 413, 429))
    form: Schema | None = None  # an HTML form's body (application/x-www-form-urlencoded)
    html_errors: bool = False  # errors are also pages (text/html) for people


JSON_OK = {200: {"application/json": OBJECT}}
PATH_PARAMS: dict[str, Schema] = {"seq": {"type": "string", "pattern": "^[0-9]{1,18}$"}}
HALL_QUERY = _query("hall", TEXT)

NUMBER: Schema = {"type": "number"}
COUNT: Schema = {"type": "integer", "minimum": 0}
#: /api/overview's answer (daemon/web/overview_model.py), the fields a client can rely on.
OVERVIEW: Schema = {
    "type": "object",
    "required": ["now", "now_text", "totals", "halls"],
    "properties": {
        "now": NUMBER,
        "now_text": TEXT,
        "totals": {"type": "object", "additionalProperties": COUNT},
        "halls": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["hall", "name", "rank", "pressure", "level", "headcount", "alerts"],
                "properties": {
                    "hall": TEXT,
                    "name": TEXT,
                    "rank": {"type": "integer", "minimum": 1},
                    "pressure": {"type": "number", "minimum": 0},
                    "level": {"type": "string", "enum": ["peak", "busy", "normal"]},
                    "headcount": {"type": "integer"},
                    "waiting": COUNT,
                    "uncovered": {"type": "array", "items": OBJECT},
                    "advice": {"type": "array", "items": OBJECT},
                    "alerts": {"type": "array", "items": OBJECT},
                    "outage": {"anyOf": [OBJECT, {"type": "null"}]},
                    "callbacks": OBJECT,
                    "complaints": OBJECT,
                    # With store.url: the instance whose row it is; `stale` when that
                    # instance has not rewritten it for 3 keep-alives (`stale_text` says so).
                    "instance": TEXT,
                    "stale": {"type": "boolean"},
                    "stale_text": {"anyOf": [TEXT, {"type": "null"}]},
                },
            },
        },
    },
}

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/metrics"): Operation(
        "Prometheus metrics (text exposition format).", {200: {"text/plain": TEXT}}
    ),
    ("GET", "/healthz"): Operation(
        "Liveness and readiness: 200 when ingest is connected, 503 when not.",
        {200: {"application/json": OBJECT}, 503: {"application/json": OBJECT}},
    ),
    ("GET", "/screen/{hall}"): Operation(
        "The hall screen customers read (one self-contained page).", {200: {"text/html": TEXT}}
    ),
    ("GET", "/api/screen/{hall}"): Operation("What the hall screen shows, as JSON.", JSON_OK),
    ("GET", "/api/openapi.json"): Operation("This document.", JSON_OK),
    ("GET", "/api/state"): Operation("Every hall's live figures.", JSON_OK),
    ("GET", "/overview"): Operation(
        "The centre overview page for the duty officer. It holds no data: open it as "
        "/overview#token=TOKEN (a fragment never reaches the server); it sends the token to "
        "/api/overview as a Bearer header.",
        {200: {"text/html": TEXT}},
    ),
    ("GET", "/ack"): Operation(
        "The acknowledgement page where the code of an alert SMS is typed in (?code= goes on "
        "to /ack/{code} with 303).",
        {200: {"text/html": TEXT}, 303: {"text/html": TEXT}},
        query=(_query("code", {"type": "string", "maxLength": 40}),),
        errors=(400, 429),
        html_errors=True,
    ),
    ("GET", "/ack/{token}"): Operation(
        "The phone page of one alert's acknowledgement. No bearer token: `token` (a signed, "
        "expiring link token or an SMS code) is the credential. 403: forged or tampered; 410: "
        "expired, or the alert has ended.",
        {200: {"text/html": TEXT}},
        errors=(403, 410, 429),
        html_errors=True,
    ),
    ("POST", "/ack/{token}"): Operation(
        "Acknowledge as a person of the duty roster: the form's `token` must equal the path's; "
        "`person` (roster id, or `name` when the role has no roster), `windows` (emergency "
        "windows opened, 0 to the hall's windows), `note`. Stored, then answered; a second "
        "submit changes nothing.",
        {200: {"text/html": TEXT}},
        errors=(400, 403, 410, 413, 429),
        html_errors=True,
        form=_body(
            {
                "token": TEXT,
                "person": TEXT,
                "name": {"type": "string", "maxLength": 32},
                "windows": {"type": "string", "pattern": "^[0-9]{1,3}$"},
                "note": {"type": "string", "maxLength": 200},
            },
            ["token"],
        ),
    ),
    ("GET", "/api/overview"): Operation(
        "Every hall ranked by pressure: people, longest wait (endured and forecast), services "
        "without a window, staffing advice, alerts with their acknowledgement, outages and "
        "call-backs, complaints due. With PostgreSQL (`store.url`) every shard's halls: this "
        "instance's from memory, the others' from the shared table, each row naming its "
        "`instance`, `stale` when that instance has gone quiet.",
        {200: {"application/json": OVERVIEW}},
    ),
    ("GET", "/api/offpeak/{hall}"): Operation(
        "The mean waits the hall has seen by weekday and hour, and the quiet hours of the "
        "coming days (working days of the calendar, within the hall's own hours): from its own "
        "waits; for a hall without history of its own, from the centre's other halls pooled, "
        "else the typical day of a service hall, these two keeping clear of the hall's lunch "
        "rotation. `source` (own | centre | typical) and `source_text` (本厅历史 | "
        "参考全中心历史 | 参考一般规律), also on each fallback slot, say where the figures come "
        "from.",
        JSON_OK,
    ),
    ("GET", "/api/report"): Operation(
        "The centre's report for a period (at most 93 days): an HTML page or a zip of CSVs.",
        {200: {"text/html": TEXT, "application/zip": {"type": "string", "format": "binary"}}},
        query=(
            _query("from", {**DATE, "format": "date"}, required=True),
            _query("to", {**DATE, "format": "date"}, required=True),
            HALL_QUERY,
            _query("format", {"type": "string", "enum": ["html", "zip"]}),
        ),
        errors=(400, 413, 429, 503),
    ),
    ("GET", "/api/v1/alerts"): Operation("Alerts firing now.", JSON_OK),
    ("GET", "/api/v1/alerts/dead-letters"): Operation(
        "Notifications given up on after their retries.", JSON_OK
    ),
    ("POST", "/api/v1/alerts/{id}/ack"): Operation(
        "Acknowledge a firing alert: its repeats stop.",
        JSON_OK,
        body=_body({"by": {"type": "string", "maxLength": 64}}),
    ),
    ("POST", "/api/v1/alerts/dead-letters/{seq}/retry"): Operation(
        "Send a dead letter again.", JSON_OK
    ),
    ("POST", "/api/v1/alertmanager/webhook"): Operation(
        "Alertmanager's webhook: forward its alerts to the roles of [alerts.forward].",
        JSON_OK,
        body=_body(
            {
                "version": {"type": "string", "const": "4"},
                "alerts": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"labels": {"type": "object"}},
                        "required": ["labels"],
                    },
                    "maxItems": 100,
                },
            },
            ["version", "alerts"],
        ),
    ),
    ("POST", "/api/v1/complaints"): Operation(
        "Register a complaint (plan 4.2): due within 2 working days.",
        {200: {"application/json": OBJECT}, 201: {"application/json": OBJECT}},
        body=_body(
            {
                "hall": _matching(HALL),
                "channel": {"type": "string", "enum": list(CHANNELS)},
                "severity": {"type": "string", "enum": list(SEVERITIES)},
                "summary": _words(2000),
                "received_by": _words(64),
                "phone": _matching(PHONE),
                "department": TEXT,
                "complaint_id": {"anyOf": [_matching(ID), {"type": "null"}]},
            },
            ["hall", "channel", "summary", "received_by"],
        ),
        errors=(400, 409, 413, 429),
    ),
    ("GET", "/api/v1/complaints"): Operation(
        "Complaints, newest first.",
        JSON_OK,
        query=(HALL_QUERY, _query("state", TEXT), _query("open", FLAG)),
    ),
    ("GET", "/api/v1/complaints/archive.csv"): Operation(
        "The complaint archive as CSV (UTF-8 with a BOM).",
        {200: {"text/csv": TEXT}},
        query=(
            HALL_QUERY,
            _query("state", TEXT),
            _query("from", {"anyOf": [DATE, {"const": ""}]}),
            _query("to", {"anyOf": [DATE, {"const": ""}]}),
        ),
    ),
    ("GET", "/api/v1/complaints/{hall}/{id}"): Operation(
        "One complaint with its history.", JSON_OK
    ),
    ("POST", "/api/v1/complaints/{hall}/{id}/transitions"): Operation(
        "A step of the complaint procedure: verify, approve, answer, follow up, archive, …",
        JSON_OK,
        body=_body(
            {
                "action": {"type": "string", "enum": list(ACTIONS)},
                "by": TEXT,
                "note": TEXT,
                "proposal": TEXT,
                "to_department": TEXT,
                "to_person": TEXT,
            },
            ["action", "by"],
        ),
        errors=(400, 404, 409, 413, 429),
    ),
    ("POST", "/api/v1/callbacks"): Operation(
        "Register a customer to be called back when the information system recovers.",
        {201: {"application/json": OBJECT}},
        body=_body(
            {
                "hall": _matching(HALL),
                "name": _words(32),
                "phone": _matching(PHONE),
                "by": _words(64),
                "note": {"type": "string", "maxLength": 500},
            },
            ["hall", "name", "phone", "by"],
        ),
        errors=(400, 409, 413, 429),
    ),
    ("GET", "/api/v1/callbacks"): Operation(
        "The call-back register.", JSON_OK, query=(HALL_QUERY, _query("pending", FLAG))
    ),
    ("GET", "/api/v1/outages"): Operation("Each hall's outage status.", JSON_OK),
    ("POST", "/api/v1/paper"): Operation(
        "Register a submission taken on paper while the hall's information system is down.",
        {201: {"application/json": OBJECT}},
        body=_body(
            {
                "hall": _matching(HALL),
                "service": _words(32),
                "name": _words(32),
                "phone": _matching(PHONE),
                "documents": _words(500),
                "by": _words(64),
                "note": {"type": "string", "maxLength": 500},
            },
            ["hall", "service", "name", "documents", "by"],
        ),
        errors=(400, 409, 413, 429),
    ),
    ("GET", "/api/v1/paper"): Operation(
        "The paper-intake register (先收件后补录).",
        JSON_OK,
        query=(HALL_QUERY, _query("pending", FLAG)),
    ),
    ("POST", "/api/v1/paper/{id}/entered"): Operation(
        "A paper submission entered into the business system, with its reference number.",
        JSON_OK,
        body=_body({"by": _words(64), "reference": _words(64)}, ["by", "reference"]),
        errors=(400, 404, 409, 413, 429),
    ),
    ("PUT", "/api/v1/outages/{hall}"): Operation(
        "When the information centre expects the system back (shown on the hall screen).",
        JSON_OK,
        body=_body(
            {
                "by": _words(64),
                "expected_recovery_at": {
                    "oneOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]
                },
            },
            ["by"],
        ),
    ),
}


def _operation(method: str, path: str, op: Operation) -> Schema:
    scope = api.ROUTES.get((method, path))
    out: Schema = {
        "operationId": f"{method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', path)}".rstrip("_"),
        "summary": op.summary,
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": PATH_PARAMS.get(name, TEXT)}
            for name in re.findall(r"{(\w+)}", path)
        ]
        + list(op.query),
        "responses": {
            **{
                str(status): {
                    "description": "OK",
                    "content": {ctype: {"schema": schema} for ctype, schema in content.items()},
                }
                for status, content in op.ok.items()
            },
            **{
                str(status): {
                    "description": "refused",
                    "content": {
                        "application/json": {"schema": ERROR},
                        "text/plain": {"schema": TEXT},
                        **({"text/html": {"schema": TEXT}} if op.html_errors else {}),
                    },
                }
                for status in (*op.errors, *((401, 403) if scope else ()))
            },
        },
    }
    if op.form is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": op.form}},
        }
    if op.body is not None:
        out["requestBody"] = {
            "required": method != "POST" or bool(op.body.get("required")),
            "content": {"application/json": {"schema": op.body}},
        }
    if scope is None:
        out["security"] = []
    else:
        out["security"] = [{"bearer": []}]
        out["x-scope"] = scope
        out["description"] = f"Needs a token with the scope `{scope}`."
    return out


def document(routes: Iterable[tuple[str, str]]) -> Schema:
    """The OpenAPI document of exactly these (method, path) routes; ValueError if a route has no
    entry in OPERATIONS or an entry no route."""
    routes = set(routes)
    if missing := routes - set(OPERATIONS):
        raise ValueError(f"routes without an OpenAPI entry: {sorted(missing)}")
    if extra := set(OPERATIONS) - routes:
        raise ValueError(f"OpenAPI entries without a route: {sorted(extra)}")
    paths: dict[str, Schema] = {}
    for method, path in sorted(routes):
        paths.setdefault(path, {})[method.lower()] = _operation(
            method, path, OPERATIONS[method, path]
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hallwatch",
            "version": "1",
            "description": "Queue monitoring and alerting for public service halls.",
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route on `app`, HEAD left out (answered like GET)."""
    return {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }


def add_routes(app: web.Application) -> None:
    """GET /api/openapi.json: the document of the app's routes, built once at the first call
    (every route is mounted by then)."""
    cache: list[bytes] = []

    async def openapi(request: web.Request) -> web.Response:
        if not cache:
            doc = document(app_routes(request.app))
            cache.append(json.dumps(doc, ensure_ascii=False, indent=1).encode())
        return web.Response(body=cache[0], content_type="application/json")

    app.router.add_get("/api/openapi.json", openapi)


def main() -> None:
    """`python -m hallwatch.daemon.web.openapi > docs/openapi.json`: the document of the routes
    in OPERATIONS, which tests/daemon/web/test_openapi.py holds equal to the app's."""
    print(json.dumps(document(OPERATIONS), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
