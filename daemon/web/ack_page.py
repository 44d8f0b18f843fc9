"""The phone page of an alert's acknowledgement: GET /ack/{token} and POST /ack/{token}, and
GET /ack where a code from an SMS is typed in.

No bearer token: the signed link (or code) is the credential (`alerts.acklink`; HMAC checked in
constant time). The page shows the alert, the people of the link's role on duty now (the
roster, `[duty]`), the emergency windows opened (0 to the hall's windows) and a note. POST
carries the token in its body too (a form cannot be posted to another alert's address by
accident, and the body is what is checked); it stores the acknowledgement, then answers. The
acknowledgement is the alert service's own (repeats stop, the report shows it); a second submit
changes nothing. A forged, tampered or expired link gets a Chinese error page (403, 410),
counted in `hallwatch_ack_page_refused_total` and logged without the token.

Guessing is bounded: a client address whose lookups failed (forged links or codes)
`limits.ACK_FAILURES_PER_MINUTE` times within a minute gets 429 with `Retry-After` for every
lookup (GET and POST /ack/{token}, GET /ack?code=) until its bucket refills; counted as
`reason="limited"`.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from html import escape
from pathlib import Path
from string import Template
from typing import Protocol
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from aiohttp import web
from hallwatch.alerts.acklink import AckDetail, Found
from hallwatch.alerts.receiver import clean_text
from hallwatch.alerts.rules import Episode
from hallwatch.alerts.service import Alerts
from hallwatch.daemon.base import glossary, signing
from hallwatch.daemon.base.ratelog import RateLimitedLog
from hallwatch.daemon.config.roster import Person
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.web.limits import FailedLookups
from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger("hallwatch.http")
PAGE = Path(__file__).resolve().parent / "static" / "ack.html"
NOTE_MAX = 200
NAME_MAX = 32
REASONS = ("forged", "expired", "over", "invalid", "limited")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
ERRORS = {
    "forged": (403, "链接无效", "该确认链接或确认码无效（可能输错、被改动，或告警早已结束）。"),
    "expired": (410, "链接已过期", "该确认链接已过期，请使用最新一条告警消息中的链接。"),
    "over": (410, "告警已结束", "该告警已结束，无需再确认。"),
    "limited": (429, "尝试次数过多", "输错确认链接或确认码的次数过多，请稍后再试。"),
}


class AckPageMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.refused = Counter(
            "hallwatch_ack_page_refused",
            "Acknowledgement page requests refused: forged (bad or tampered link or code), "
            "expired, over (the alert has ended), invalid (a bad form), limited (too many "
            "failed lookups from the address).",
            ["reason"],
            registry=registry,
        )
        self.acks = Counter(
            "hallwatch_ack_page_acks", "Alerts acknowledged from the phone page.", registry=registry
        )
        for r in REASONS:
            self.refused.labels(r)


class Page:
    """Renders the template; every value is escaped here."""

    def __init__(self) -> None:
        self._tpl = Template(PAGE.read_text("utf-8"))

    def __call__(self, title: str, hall: str, body: str, status: int = 200) -> web.Response:
        html = self._tpl.substitute(title=escape(title), hall=escape(hall), body=body)
        return web.Response(
            text=html, status=status, content_type="text/html", charset="utf-8", headers=HEADERS
        )


def _card(title: str, text: str, kind: str) -> str:
    return f'<div class="card {kind}"><h2>{escape(title)}</h2><p>{escape(text)}</p></div>'


class AckPage:
    """The handlers, over the running alert service."""

    def __init__(
        self,
        alerts: Alerts,
        windows_of: Callable[[str], int],
        registry: CollectorRegistry | None,
        guesses: FailedLookups | None = None,
    ) -> None:
        self.alerts, self.windows_of = alerts, windows_of
        self.guesses = guesses if guesses is not None else FailedLookups()
        self.page, self.metrics = Page(), AckPageMetrics(registry)
        self.quiet = RateLimitedLog(log, every=60.0)
        self.zone = ZoneInfo(alerts.settings.rules.timezone)

    def clock(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.zone).strftime("%H:%M")

    def refuse(self, reason: str, request: web.Request, hall: str = "") -> web.Response:
        """The error page; counted, and logged (at most once a minute per reason) with the
        client's address, never the token. A forged one counts against the address."""
        self.metrics.refused.labels(reason).inc()
        if reason == "forged":
            self.guesses.failed(request.remote or "?")
        status, title, text = ERRORS[reason]
        self.quiet.log(
            logging.WARNING,
            f"ack-{reason}",
            self.alerts.now(),
            "ack page refused (%s) from %s",
            reason,
            request.remote,
        )
        return self.page(title, hall, _card(title, text, "err"), status)

    def limited(self, request: web.Request) -> web.Response | None:
        """429 with `Retry-After` while the address has no failed lookups left, else None."""
        wait = self.guesses.wait(request.remote or "?")
        if not wait:
            return None
        resp = self.refuse("limited", request)
        resp.headers["Retry-After"] = str(wait)
        return resp

    def find(self, token: str, request: web.Request) -> Found | web.Response:
        """The firing alert and role of a link or code, or the error page."""
        alerts, links = self.alerts, self.alerts.links
        refused = self.limited(request)
        if refused is not None:
            return refused
        if links is None:
            return self.refuse("forged", request)
        episodes = list(alerts.engine.episodes.values())
        got = links.resolve(token, alerts.now(), episodes, lambda h: alerts.roles_of(h).keys())
        if isinstance(got, str):
            return self.refuse(got, request)
        if got.episode.phase != "firing":
            return self.refuse("over", request, alerts.names(got.episode.hall).hall)
        return got

    def team(self, found: Found) -> tuple[dict[str, Person], bool]:
        """The role's people to pick from: those on duty now, else all (and False)."""
        assert self.alerts.links is not None
        duty, e = self.alerts.links.duty, found.episode
        local = datetime.fromtimestamp(self.alerts.now(), self.zone)
        on = duty.on_duty(e.hall, found.role, local)
        return (on, True) if on else (dict(duty.people(e.hall, found.role)), False)

    def summary(self, e: Episode, role: str) -> str:
        what = glossary.ALERTS.get(e.alert, e.alert)
        who = glossary.ROLES.get(role, role)
        level = glossary.LEVELS.get(e.level, str(e.level))
        now = e.summary.split("：", 1)[-1]  # the figures, without "h1排队高峰未确认提醒"
        return (
            f'<div class="card alarm"><h2>{escape(what)}</h2><p>{escape(now)}</p>'
            f'<p class="muted">开始 {self.clock(e.since)}　级别：{escape(level)}　'
            f"通知：{escape(who)}<br>编号 {escape(e.alert_id)}</p></div>"
        )

    def done(self, e: Episode, fresh: bool) -> str:
        head = "已确认，重复提醒已停止" if fresh else "此告警已确认"
        text = f"{e.acked_by or ''}　{self.clock(e.acked_at or self.alerts.now())} 确认"
        return _card(head, text, "ok")

    def form(self, found: Found, problem: str = "") -> str:
        """The form: who I am, emergency windows opened, a note; the token in its body."""
        e = found.episode
        team, on_duty = self.team(found)
        who = escape(glossary.ROLES.get(found.role, found.role))
        rows = []
        if team:
            hint = "" if on_duty else '<p class="muted">当前无人排班，列出该岗位全部人员</p>'
            rows.append(f"<fieldset><legend>我是（{who}）</legend>{hint}")
            rows += [
                f'<label class="pick"><input type="radio" name="person" '
                f'value="{escape(pid)}" required><span class="who">{escape(p.name)}</span>'
                f'<span class="muted">{escape(p.shift())}</span></label>'
                for pid, p in team.items()
            ]
            rows.append("</fieldset>")
        else:
            rows.append(
                f"<fieldset><legend>我是（{who}，名册未配置，请填姓名）</legend>"
                f'<input type="text" name="name" maxlength="{NAME_MAX}" required></fieldset>'
            )
        rows.append('<fieldset><legend>已开设应急窗口</legend><div class="windows">')
        rows += [
            f'<label><input type="radio" name="windows" value="{n}"{" checked" * (n == 0)}>'
            f"<span>{n}</span></label>"
            for n in range(max(0, self.windows_of(e.hall)) + 1)
        ]
        rows.append("</div></fieldset>")
        rows.append(
            f"<fieldset><legend>备注（选填，{NOTE_MAX}字以内）</legend>"
            f'<textarea name="note" rows="3" maxlength="{NOTE_MAX}"></textarea></fieldset>'
        )
        bad = f'<p class="problem">{escape(problem)}</p>' if problem else ""
        return (
            f'<form method="post">{bad}'
            f'<input type="hidden" name="token" value="{escape(found.token)}">'
            + "".join(rows)
            + '<button type="submit">确认收到，停止重复提醒</button></form>'
            f'<p class="muted">链接有效至 {self.clock(found.expiry)}</p>'
        )

    async def entry(self, request: web.Request) -> web.StreamResponse:
        """GET /ack: where a code is typed in; ?code=... goes on to its page."""
        raw = request.query.get("code", "")
        refused = self.limited(request) if raw else None
        if refused is not None:
            return refused
        if raw:
            code = signing.normal_code(raw[:40])
            if code is None:
                self.metrics.refused.labels("invalid").inc()
                body = _card("确认码格式不对", "确认码为10位字母和数字，请核对短信。", "err")
                return self.page("告警确认", "", body + _entry_form(), 400)
            raise web.HTTPSeeOther(f"ack/{code}", headers=HEADERS)  # relative: behind a prefix
        return self.page("告警确认", "", _entry_form())

    async def show(self, request: web.Request) -> web.StreamResponse:
        found = self.find(request.match_info["token"], request)
        if isinstance(found, web.Response):
            return found
        e = found.episode
        hall = self.alerts.names(e.hall).hall
        if e.acked_at is not None:
            return self.page("告警确认", hall, self.summary(e, found.role) + self.done(e, False))
        return self.page("告警确认", hall, self.summary(e, found.role) + self.form(found))

    async def submit(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        data = _form(await request.read())
        sent = data.get("token")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), token.encode()):
            return self.limited(request) or self.refuse("forged", request)
        found = self.find(token, request)
        if isinstance(found, web.Response):
            return found
        e, hall = found.episode, self.alerts.names(found.episode.hall).hall
        if e.acked_at is not None:  # a second submit: nothing changes
            return self.page("告警确认", hall, self.summary(e, found.role) + self.done(e, False))
        assert self.alerts.links is not None
        team = dict(self.alerts.links.duty.people(e.hall, found.role))
        picked = _person(data, team)
        windows = _windows(data.get("windows"), max(0, self.windows_of(e.hall)))
        raw_note = data.get("note")
        note = clean_text(raw_note, NOTE_MAX + 1) if isinstance(raw_note, str) else ""
        problem = _problem(picked, windows, note)
        if problem or picked is None or windows is None:
            self.metrics.refused.labels("invalid").inc()
            body = self.summary(e, found.role) + self.form(found, problem)
            return self.page("告警确认", hall, body, 400)
        return await self.acknowledge(found, picked, windows, note)

    async def acknowledge(
        self, found: Found, picked: tuple[str, str], windows: int, note: str
    ) -> web.Response:
        """Store the acknowledgement (the alert service's, with the page's details), then
        answer."""
        e, (pid, name) = found.episode, picked
        hall = self.alerts.names(e.hall).hall
        role = glossary.ROLES.get(found.role, found.role)
        by = f"{name}（{role}）已开应急窗口{windows}个"
        now = self.alerts.now()
        detail = AckDetail(e.alert_id, e.hall, found.role, pid, name, windows, note, now)
        acked, fresh = await self.alerts.ack_from_page(detail, by)
        if acked is None:
            _, title, text = ERRORS["over"]
            return self.page(title, hall, _card(title, text, "err"), 410)
        if fresh:
            self.metrics.acks.inc()
            log.info(
                "alert %s acknowledged on the page by %s (%s), %d emergency windows",
                acked.alert_id,
                name,
                found.role,
                windows,
                extra={"hall": acked.hall, "alert": acked.alert_id},
            )
        return self.page(
            "告警确认", hall, self.summary(acked, found.role) + self.done(acked, fresh)
        )


def add_routes(
    app: web.Application,
    alerts: Alerts,
    *,
    windows_of: Callable[[str], int],
    registry: CollectorRegistry | None = None,
    guesses: FailedLookups | None = None,
) -> None:
    """Mount GET /ack, GET /ack/{token}, POST /ack/{token}. `windows_of(hall)`: how many
    windows the hall has (the most emergency windows one can say were opened); `guesses`:
    the failed-lookup bound (10 a minute per address by default)."""
    page = AckPage(alerts, windows_of, registry, guesses)
    app.router.add_get("/ack", page.entry)
    app.router.add_get("/ack/{token}", page.show)
    app.router.add_post("/ack/{token}", page.submit)


def _problem(picked: tuple[str, str] | None, windows: int | None, note: str) -> str:
    if picked is None:
        return "请选择您的姓名"
    if windows is None:
        return "应急窗口数不对"
    if len(note) > NOTE_MAX:
        return f"备注请在{NOTE_MAX}字以内"
    return ""


class Source(Protocol):
    """What the page reads of the running daemon."""

    @property
    def alerts(self) -> Alerts | None: ...
    @property
    def registry(self) -> CollectorRegistry: ...
    @property
    def state(self) -> HallsState: ...


def mount(app: web.Application, src: Source) -> None:
    """The page on the running daemon: its alert service, metrics and halls' windows."""
    assert src.alerts is not None

    def windows_of(hall: str) -> int:
        h = src.state.halls.get(hall)
        return len(h.windows) if h is not None else 0

    add_routes(app, src.alerts, windows_of=windows_of, registry=src.registry)


def _entry_form() -> str:
    return (
        '<form method="get"><fieldset><legend>输入短信中的确认码</legend>'
        '<input type="text" name="code" maxlength="20" autocomplete="off" '
        'autocapitalize="characters" required></fieldset>'
        '<button type="submit">下一步</button></form>'
    )


def _form(raw: bytes) -> dict[str, str]:
    """The form's fields (urlencoded, whatever the Content-Type claims); the first of a name
    counts; a body that is not a small form gives no fields (and so is refused)."""
    try:
        pairs = parse_qsl(raw.decode("utf-8", "replace"), max_num_fields=16)
    except ValueError:
        return {}
    out: dict[str, str] = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


def _person(data: Mapping[str, object], team: Mapping[str, Person]) -> tuple[str, str] | None:
    """(id, name) of the person picked from the roster; a typed name when the role has none."""
    if team:
        pid = data.get("person")
        if isinstance(pid, str) and pid in team:
            return pid, team[pid].name
        return None
    name = data.get("name")
    if isinstance(name, str) and (cleaned := clean_text(name, NAME_MAX)).strip():
        return "", cleaned
    return None


def _windows(raw: object, top: int) -> int | None:
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 3:
        return None
    n = int(raw)
    return n if 0 <= n <= top else None
