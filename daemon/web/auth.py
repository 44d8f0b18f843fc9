"""Who may call which HTTP route: one token table, one route table, one aiohttp middleware.

Deny by default. A route is answered without a token only if it is in `PUBLIC`; every other
route needs `Authorization: Bearer <token>` of a token in `[api.tokens]` that holds the scope
`ROUTES` gives it (401 without a valid token, 403 with a token that lacks the scope). A route
that is in neither table is refused to every token, `*` included, so a route added without
saying who may call it stays closed. Unless the token holds `pii:read`, phone and ID numbers are
masked in the answer (`hallwatch.daemon.web.pii`), whatever handler produced it.

Tokens are compared as SHA-256 digests with `hmac.compare_digest`, every configured token each
time, so neither the answer time nor an early exit says how much of a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from hallwatch.daemon.base.errors import ConfigError, env_name, read_secret
from hallwatch.daemon.web import pii

log = logging.getLogger("hallwatch.http")

ALL = "*"
PII = "pii:read"
#: Every scope a token may hold, and what it allows.
SCOPES: dict[str, str] = {
    "state:read": "the live hall state (/api/state) and the off-peak tables",
    "alerts:read": "alerts firing now and dead letters",
    "alerts:write": "acknowledge alerts, send dead letters again (includes alerts:read)",
    "alerts:forward": "the Alertmanager webhook receiver (give it to Alertmanager only)",
    "reports:read": "the centre's reports",
    "complaints:read": "complaints and their history, the archive export",
    "complaints:write": "register complaints and record their steps (includes complaints:read)",
    "callbacks:read": "the outage call-back register and halls in outage",
    "callbacks:write": "register call-backs, set the expected recovery (includes callbacks:read)",
    PII: "phone and ID numbers unmasked in every answer",
}
#: A write scope lets its holder read what it writes.
IMPLIED = {
    "alerts:write": "alerts:read",
    "complaints:write": "complaints:read",
    "callbacks:write": "callbacks:read",
}

#: Answered to anyone: what Prometheus, load balancers and the customers' hall screen need.
PUBLIC: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/metrics"),
        ("GET", "/healthz"),
        ("GET", "/screen/{hall}"),  # the page is self-contained: no static files
        ("GET", "/api/screen/{hall}"),  # what the page polls
    }
)
#: (method, route) -> the scope a token needs. HEAD is answered like GET.
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/api/state"): "state:read",
    ("GET", "/api/offpeak/{hall}"): "state:read",  # the screen builds its own quiet slots
    ("GET", "/api/report"): "reports:read",
    ("GET", "/api/v1/alerts"): "alerts:read",
    ("GET", "/api/v1/alerts/dead-letters"): "alerts:read",
    ("POST", "/api/v1/alerts/{id}/ack"): "alerts:write",
    ("POST", "/api/v1/alerts/dead-letters/{seq}/retry"): "alerts:write",
    ("POST", "/api/v1/alertmanager/webhook"): "alerts:forward",
    ("POST", "/api/v1/complaints"): "complaints:write",
    ("GET", "/api/v1/complaints"): "complaints:read",
    ("GET", "/api/v1/complaints/archive.csv"): "complaints:read",
    ("GET", "/api/v1/complaints/{hall}/{id}"): "complaints:read",
    ("POST", "/api/v1/complaints/{hall}/{id}/transitions"): "complaints:write",
    ("POST", "/api/v1/callbacks"): "callbacks:write",
    ("GET", "/api/v1/callbacks"): "callbacks:read",
    ("GET", "/api/v1/outages"): "callbacks:read",
    ("PUT", "/api/v1/outages/{hall}"): "callbacks:write",
}

NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True, slots=True)
class Token:
    """One API token: a name for logs, the secret, and what it may do."""

    name: str
    token: str = field(repr=False)
    scopes: frozenset[str] = frozenset()

    def allows(self, scope: str) -> bool:
        return (
            ALL in self.scopes
            or scope in self.scopes
            or any(IMPLIED.get(s) == scope for s in self.scopes)
        )


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The `[api]` section: `[api.tokens.NAME]` with `token` and `scopes`."""

    tokens: tuple[Token, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> ApiSettings:
        for k in data:
            if k != "tokens":
                raise ConfigError(f"api.{k}", "unknown key (only [api.tokens.NAME] tables)")
        raw = data.get("tokens", {})
        if not isinstance(raw, dict):
            raise ConfigError("api.tokens", "must be a table of [api.tokens.NAME] tables")
        return cls(tuple(_tokens(raw, "api.tokens", env)))


def _tokens(raw: Mapping[str, Any], prefix: str, env: Mapping[str, str]) -> list[Token]:
    tokens: list[Token] = []
    seen: set[str] = set()
    for name, body in raw.items():
        key = f"{prefix}.{name}"
        if not NAME.fullmatch(name) or not isinstance(body, dict):
            raise ConfigError(key, "must be a table named [A-Za-z0-9_.-]{1,64}")
        for k in body:
            if k not in ("token", "scopes"):
                raise ConfigError(f"{key}.{k}", "unknown key (token, scopes)")
        secret = read_secret(body, "token", f"{key}.token", env)
        if len(secret) < MIN_TOKEN_CHARS:
            raise ConfigError(
                f"{key}.token",
                f"must be at least {MIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 24`); "
                f"best from a file named by {env_name(key)}_TOKEN_FILE",
            )
        if secret in seen:
            raise ConfigError(f"{key}.token", "the same token is given to two names")
        seen.add(secret)
        scopes = body.get("scopes", [])
        if (
            not isinstance(scopes, list)
            or not scopes
            or not all(isinstance(s, str) for s in scopes)
        ):
            raise ConfigError(f"{key}.scopes", 'a non-empty list, e.g. ["alerts:read"] or ["*"]')
        for s in scopes:
            if s != ALL and s not in SCOPES:
                raise ConfigError(
                    f"{key}.scopes", f"unknown scope {s!r} (one of {ALL}, {', '.join(SCOPES)})"
                )
        tokens.append(Token(name, secret, frozenset(scopes)))
    return tokens


# --- start-up check ------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`; everything else (0.0.0.0, ::, names) is exposed."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ungranted(tokens: Iterable[Token]) -> list[str]:
    """The route scopes that no token holds (their routes answer 401 to everyone)."""
    held = list(tokens)
    return sorted({s for s in ROUTES.values() if not any(t.allows(s) for t in held)})


def check_exposure(host: str, tokens: Sequence[Token]) -> None:
    """Refuse to listen beyond loopback while some protected route has no token at all."""
    if is_loopback(host):
        return
    missing = ungranted(tokens)
    if not missing:
        return
    quoted = ", ".join(f'"{s}"' for s in missing)
    raise ConfigError(
        "http.listen",
        f"{host} is reachable from the network, but no token in [api.tokens] holds {quoted}. "
        "Give every API scope to some token before listening beyond loopback, e.g. in the "
        'config file: [api.tokens.admin] scopes = ["*"] with the token (16+ characters) in '
        "the file named by HALLWATCH_API_TOKENS_ADMIN_TOKEN_FILE; or listen on 127.0.0.1.",
    )


# --- the middleware ------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TOKEN_KEY = web.RequestKey("api_token", Token)


class Keyring:
    """The configured tokens, matched by digest."""

    def __init__(self, tokens: Iterable[Token]) -> None:
        self._tokens = [(hashlib.sha256(t.token.encode()).digest(), t) for t in tokens]

    def find(self, header: str) -> Token | None:
        """The token a `Bearer` Authorization header carries, or None."""
        scheme, _, given = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return None
        digest = hashlib.sha256(given.strip().encode("utf-8", "replace")).digest()
        found = None
        for d, t in self._tokens:  # no early exit: every token is compared every time
            if hmac.compare_digest(d, digest):
                found = t
        return found


def route_key(request: web.Request) -> tuple[str, str] | None:
    """(method, route pattern) of the route the request matched; None for 404/405."""
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return None
    method = "GET" if route.method == "HEAD" else route.method
    return method, resource.canonical


def middleware(tokens: Iterable[Token]) -> Middleware:
    keys = Keyring(tokens)

    @web.middleware
    async def authorise(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = route_key(request)
        if key is None or key in PUBLIC:  # unknown path or method: aiohttp's 404/405
            return await handler(request)
        scope = ROUTES.get(key)
        token = keys.find(request.headers.get("Authorization", ""))
        if token is None:
            return _refuse(401, "unauthorized", "需要有效的访问令牌 (Authorization: Bearer)")
        if scope is None:
            log.error("route %s %s declares no scope: refused to everyone", *key)
            return _refuse(403, "forbidden", "该接口未配置访问权限")
        if not token.allows(scope):
            return _refuse(403, "forbidden", f"令牌缺少权限 {scope}")
        request[TOKEN_KEY] = token
        response = await handler(request)
        if not token.allows(PII):
            mask_response(response)
        return response

    return authorise


def allows(request: web.Request, scope: str) -> bool:
    """Whether the request's token (set by the middleware) holds `scope`."""
    token = request.get(TOKEN_KEY)
    return token is not None and token.allows(scope)


def _refuse(status: int, code: str, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="hallwatch"'} if status == 401 else {}
    return web.json_response(
        {"error": code, "message": message},
        status=status,
        headers=headers,
        dumps=lambda o: json.dumps(o, ensure_ascii=False),
    )


_TEXT = ("application/json", "text/csv", "text/html", "text/plain")


def mask_response(response: web.StreamResponse) -> None:
    """Mask phone and ID numbers in a finished text answer (JSON: inside its strings)."""
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return
    ctype = response.content_type
    if ctype not in _TEXT:
        return
    raw = response.body
    bom = raw.startswith(b"\xef\xbb\xbf")  # Excel's UTF-8 mark on CSV
    text = raw.decode("utf-8-sig", "surrogateescape")  # never skip a body for its bytes
    if ctype == "application/json":
        try:
            data = json.loads(text)
            clean = pii.mask_json(data)
        except (ValueError, RecursionError):
            pass  # not ours to judge: masked as text below
        else:
            if clean != data:
                response.body = json.dumps(clean, ensure_ascii=False).encode("utf-8")
            return
    masked = pii.mask_text(text)
    if masked != text:
        response.body = (b"\xef\xbb\xbf" if bom else b"") + masked.encode(
            "utf-8", "surrogateescape"
        )
