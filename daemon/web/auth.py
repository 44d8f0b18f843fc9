"""Who may call which HTTP route: the aiohttp middleware that enforces the route and token
tables of `hallwatch.daemon.config.api`.

Deny by default. A route is answered without a token only if it is in `PUBLIC`; every other
route needs `Authorization: Bearer <token>` of a token in `[api.tokens]` that holds the scope
`ROUTES` gives it (401 without a valid token, 403 with a token that lacks the scope). A route
that is in neither table is refused to every token, `*` included, so a route added without
saying who may call it stays closed. Unless the token holds `pii:read`, phone and ID numbers are
masked in the answer (`hallwatch.daemon.base.pii`), whatever handler produced it.

Tokens are compared as SHA-256 digests with `hmac.compare_digest`, every configured token each
time, so neither the answer time nor an early exit says how much of a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware
from hallwatch.daemon.base import pii
from hallwatch.daemon.config.api import PII, PUBLIC, ROUTES, Token

log = logging.getLogger("hallwatch.http")

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


def may_read_pii(request: web.Request) -> bool:
    """Whether the request's token may see phone and ID numbers unmasked (`pii:read`)."""
    return allows(request, PII)


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
