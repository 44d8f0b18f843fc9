"""Who may call which HTTP route, as settings: the scopes, the route table, the `[api]` token
table, and the start-up check that refuses to listen beyond loopback while a route has no token.

Deny by default. A route is answered without a token only if it is in `PUBLIC`; every other
route needs a token in `[api.tokens]` that holds the scope `ROUTES` gives it. A route that is in
neither table is refused to every token, `*` included. `hallwatch.daemon.web.auth` enforces these
tables on every request; they live here so that loading the settings never imports the web side.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config.table import SECRET, Check, Name, doc, read
from msgspec import Meta

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
    "overview:read": "the centre overview (/api/overview): every hall ranked by pressure",
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
        ("GET", "/api/openapi.json"),  # the API's description: no data (docs/openapi.json too)
        ("GET", "/overview"),  # a shell with no data; its token stays in the URL fragment
        # The acknowledgement page: the signed link (or code) in the path is the credential,
        # checked by the handler (web.ack_page); a bearer token is not asked for.
        ("GET", "/ack"),
        ("GET", "/ack/{token}"),
        ("POST", "/ack/{token}"),
    }
)
#: (method, route) -> the scope a token needs. HEAD is answered like GET.
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/api/state"): "state:read",
    ("GET", "/api/offpeak/{hall}"): "state:read",  # the screen builds its own quiet slots
    ("GET", "/api/report"): "reports:read",
    ("GET", "/api/overview"): "overview:read",
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
    ("POST", "/api/v1/paper"): "callbacks:write",  # the outage procedure's other register
    ("GET", "/api/v1/paper"): "callbacks:read",
    ("POST", "/api/v1/paper/{id}/entered"): "callbacks:write",
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


def _scopes_problem(scopes: tuple[str, ...]) -> str | None:
    if not scopes:
        return 'a non-empty list, e.g. ["alerts:read"] or ["*"]'
    for s in scopes:
        if s != ALL and s not in SCOPES:
            return f"unknown scope {s!r} (one of {ALL}, {', '.join(SCOPES)})"
    return None


@dataclass(frozen=True, slots=True)
class TokenFile:
    """`[api.tokens.NAME]` as written in the file."""

    token: Annotated[
        str,
        SECRET,
        Meta(min_length=MIN_TOKEN_CHARS),
        doc("the bearer token (`openssl rand -hex 24`), best via ..._TOKEN_FILE"),
    ] = field(default="", repr=False)
    scopes: Annotated[
        tuple[str, ...],
        Check(_scopes_problem, "one or more scopes, or *"),
        doc("what the token may do (the scope table below)"),
    ] = ()


@dataclass(frozen=True, slots=True)
class ApiFile:
    """`[api]`: only `[api.tokens.NAME]` tables."""

    tokens: Annotated[Mapping[Name, TokenFile], doc("API tokens, by name")] = field(
        default_factory=dict
    )


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The `[api]` section: `[api.tokens.NAME]` with `token` and `scopes`."""

    tokens: tuple[Token, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> ApiSettings:
        return cls.build(read(data, ApiFile, "api", env))

    @classmethod
    def build(cls, f: ApiFile) -> ApiSettings:
        seen: set[str] = set()
        for name, t in f.tokens.items():
            if t.token in seen:
                raise ConfigError(
                    f"api.tokens.{name}.token", "the same token is given to two names"
                )
            seen.add(t.token)
        return cls(tuple(Token(name, t.token, frozenset(t.scopes)) for name, t in f.tokens.items()))


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
