"""The complaint procedure of the plan (4.2) as a pure state machine: no clock, no I/O.

    registered --verify--> verified --approve--> approved --answer--> answered
        --follow_up--> followed_up --archive--> archived

`registered`: the member of staff who took the complaint is its first responsible person.
`verified`: the department checked it and proposed an answer, due within
`verify_working_days` (2) working days of receipt. `approved`: the department head signed the
proposal. `answered`: the complainant was given the answer, due within `answer_working_days`
of receipt. `followed_up`: the department head's follow-up call (回访), due within
`follow_up_working_days` of the answer. `archived`: kept for later review.
`transfer` hands an open complaint to another department (back to `registered` there; the
deadlines still run from the receipt, so a transfer does not buy time); `escalate` marks it
serious, which reports it to the centre director's office at once; `note` records contact
with the complainant (plan 4.2 step 3). Every step is a `Step` with its actor and time.

Deadlines end at midnight after the last working day, in the hall's time zone; a day is
counted from the day after receipt (自受理之日起), on the official calendar with its make-up
working days (`WorkCalendar`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hallwatch.daemon.base.pii import mask_phone
from hallwatch.daemon.config.staff import ComplaintSettings
from hallwatch.daemon.core.hours import Hours, last_opening_before, next_opening
from hallwatch.daemon.core.workdays import WorkCalendar

STATES = ("registered", "verified", "approved", "answered", "followed_up", "archived")
STATE_NAMES = {
    "registered": "已受理登记",
    "verified": "已核查拟办",
    "approved": "已批示",
    "answered": "已答复",
    "followed_up": "已回访",
    "archived": "已存档",
}
# action -> (states it may start from, state it leads to; None: stays)
ACTIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "verify": (("registered",), "verified"),
    "approve": (("verified",), "approved"),
    "answer": (("approved",), "answered"),
    "follow_up": (("answered",), "followed_up"),
    "archive": (("followed_up",), "archived"),
    "transfer": (("registered", "verified", "approved"), "registered"),
    "escalate": (STATES[:-1], None),
    "note": (STATES[:-1], None),
}
ACTION_NAMES = {
    "register": "受理登记",
    "verify": "核查并提出拟办意见",
    "approve": "部门负责人批示",
    "answer": "答复当事人",
    "follow_up": "回访",
    "archive": "存档",
    "transfer": "移送",
    "escalate": "上报中心主任室",
    "note": "沟通反馈",
    "remind": "到期提醒",
    "overdue": "超期督办",
    "reported": "已报主任室",
    "notified": "通知责任部门",
}
DEFAULT_HOURS = Hours()
CHANNELS = ("visit", "phone", "letter", "online")
SEVERITIES = ("normal", "serious")
PHONE = re.compile(r"\+?[0-9][0-9 -]{4,19}")
ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
HALL = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class ComplaintError(ValueError):
    """A registration or transition the procedure does not allow; `code` is for the API."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Step:
    """One entry of a complaint's history: who did what, when, and the state after it."""

    at: float
    action: str
    actor: str
    state: str
    note: str = ""
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Complaint:
    hall: str
    complaint_id: str
    channel: str
    severity: str
    summary: str
    received_by: str
    received_at: float
    department: str
    assignee: str  # the person responsible now (the receiver, until a transfer)
    state: str = "registered"
    phone: str | None = None  # personal data: stored, shown masked
    proposal: str = ""
    answered_at: float | None = None
    # Alarms already raised, e.g. "remind:verify", "overdue:answer", "serious".
    raised: frozenset[str] = frozenset()
    updated_at: float = 0.0

    @property
    def open(self) -> bool:
        return self.state != "archived"


@dataclass(frozen=True, slots=True)
class Deadline:
    stage: str  # verify | answer | follow_up
    due_at: float


@dataclass(frozen=True, slots=True)
class Alarm:
    """Something to tell people about a complaint: `registered`, `remind`, `overdue` or
    `serious`."""

    kind: str
    hall: str
    complaint_id: str
    stage: str = ""
    due_at: float | None = None

    @property
    def flag(self) -> str:
        return f"{self.kind}:{self.stage}" if self.stage else self.kind

    @property
    def key(self) -> str:
        """The idempotency key of its notifications."""
        return f"complaint/{self.hall}/{self.complaint_id}/{self.flag}"


def clean_phone(phone: str | None) -> str | None:
    """The number as stored (digits and a leading +), or ComplaintError when it is not one."""
    if phone is None or phone == "":
        return None
    if not isinstance(phone, str) or not PHONE.fullmatch(phone.strip()):
        raise ComplaintError("bad_phone", "phone must be a telephone number")
    return ("+" if phone.strip().startswith("+") else "") + re.sub(r"\D", "", phone)


def _text(value: object, name: str, limit: int, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ComplaintError("missing_field", f"{name} is required (a non-empty string)")
    return value.strip()[:limit]


def register(
    *,
    hall: str,
    complaint_id: str,
    channel: str,
    severity: str,
    summary: str,
    received_by: str,
    received_at: float,
    phone: str | None = None,
    department: str = "",
    settings: ComplaintSettings,
) -> tuple[Complaint, Step]:
    """A new complaint in `registered`, and the first step of its history."""
    if not isinstance(hall, str) or not HALL.fullmatch(hall):
        raise ComplaintError("bad_hall", "hall must match [A-Za-z0-9_.-]{1,64}")
    if not isinstance(complaint_id, str) or not ID.fullmatch(complaint_id):
        raise ComplaintError("bad_id", "complaint_id must match [A-Za-z0-9_.:-]{1,128}")
    if channel not in CHANNELS:
        raise ComplaintError("bad_channel", f"channel must be one of {', '.join(CHANNELS)}")
    if severity not in SEVERITIES:
        raise ComplaintError("bad_severity", "severity must be normal or serious")
    by = _text(received_by, "received_by", 64)
    dept = _text(department, "department", 64, required=False) or settings.default_department
    c = Complaint(
        hall=hall,
        complaint_id=complaint_id,
        channel=channel,
        severity=severity,
        summary=_text(summary, "summary", 2000),
        received_by=by,
        received_at=received_at,
        department=dept,
        assignee=by,
        phone=clean_phone(phone),
        updated_at=received_at,
    )
    return c, Step(received_at, "register", by, "registered", data={"department": dept})


def apply(
    c: Complaint,
    action: str,
    *,
    actor: str,
    at: float,
    note: str = "",
    proposal: str = "",
    to_department: str = "",
    to_person: str = "",
) -> tuple[Complaint, Step]:
    """The complaint after a staff action, and the step to append; ComplaintError if not allowed."""
    if action not in ACTIONS:
        raise ComplaintError("bad_action", f"action must be one of {', '.join(ACTIONS)}")
    allowed, target = ACTIONS[action]
    if c.state not in allowed:
        raise ComplaintError(
            "bad_state",
            f"cannot {action} a complaint in state {c.state} (allowed from: {', '.join(allowed)})",
        )
    who = _text(actor, "by", 64)
    note = _text(note, "note", 2000, required=False)
    data: dict[str, str] = {}
    changes: dict[str, object] = {"updated_at": at}
    if action == "verify":
        changes["proposal"] = data["proposal"] = _text(proposal, "proposal", 2000)
    elif action == "answer":
        changes["answered_at"] = at
    elif action == "transfer":
        dept = _text(to_department, "to_department", 64)
        person = _text(to_person, "to_person", 64, required=False) or ""
        if dept == c.department and (not person or person == c.assignee):
            raise ComplaintError("bad_transfer", "already with that department")
        data = {"from_department": c.department, "to_department": dept, "to_person": person}
        changes["department"] = dept
        changes["assignee"] = person or f"{dept}负责人"
        changes["proposal"] = ""
    elif action == "escalate":
        if c.severity == "serious":
            raise ComplaintError("bad_state", "already serious and reported")
        changes["severity"] = "serious"
    new = replace(c, state=target or c.state, **changes)  # type: ignore[arg-type]
    return new, Step(at, action, who, new.state, note, data)


# --- deadlines and alarms -----------------------------------------------------------------


def end_of_working_days(start: float, n: int, calendar: WorkCalendar, tz: str) -> float:
    """Midnight after the n-th working day following the local date of `start`."""
    zone = ZoneInfo(tz)
    day: date = datetime.fromtimestamp(start, zone).date()
    last = calendar.working_days_after(day, n)
    return datetime.combine(last + timedelta(days=1), time(0), zone).timestamp()


def deadline(
    c: Complaint, settings: ComplaintSettings, calendar: WorkCalendar, tz: str
) -> Deadline | None:
    """The deadline of the stage the complaint is in; None once followed up."""
    if c.state == "registered":
        n, stage, start = settings.verify_working_days, "verify", c.received_at
    elif c.state in ("verified", "approved"):
        n, stage, start = settings.answer_working_days, "answer", c.received_at
    elif c.state == "answered":
        n, stage = settings.follow_up_working_days, "follow_up"
        start = c.answered_at if c.answered_at is not None else c.updated_at
    else:
        return None
    return Deadline(stage, end_of_working_days(start, n, calendar, tz))


@dataclass(frozen=True, slots=True)
class Marks:
    """The instants at which a complaint's alarms are due (see `alarms`), computed once per
    version of the complaint: the calendar and opening-hours arithmetic is the costly part."""

    deadline: Deadline | None
    registered_at: float  # the announcement to the responsible head: the next opening
    remind_at: float  # the reminder: the last opening before `remind_before_s` ahead
    overdue_at: float  # the escalation: the next opening at or after the deadline

    def next_after(self, now: float) -> float:
        """The first instant after `now` at which `alarms` may answer differently."""
        d = self.deadline
        marks = [self.registered_at] + (
            [] if d is None else [self.remind_at, d.due_at, self.overdue_at]
        )
        return min((t for t in marks if t > now), default=math.inf)


def marks(
    c: Complaint,
    settings: ComplaintSettings,
    calendar: WorkCalendar,
    tz: str,
    hours: Hours = DEFAULT_HOURS,
) -> Marks:
    d = deadline(c, settings, calendar, tz)
    registered = next_opening(c.received_at, hours, calendar, tz)
    if d is None:
        return Marks(None, registered, math.inf, math.inf)
    return Marks(
        d,
        registered,
        last_opening_before(d.due_at - settings.remind_before_s, hours, calendar, tz),
        next_opening(d.due_at, hours, calendar, tz),
    )


def alarms(
    c: Complaint,
    now: float,
    settings: ComplaintSettings,
    calendar: WorkCalendar,
    tz: str,
    hours: Hours = DEFAULT_HOURS,
    at: Marks | None = None,
) -> list[Alarm]:
    """Alarms due at `now` that were not raised yet. A serious complaint reaches the director's
    office at once, day or night. Everything else needs someone at work, so it falls in the
    hall's working hours (`core.hours`): a new complaint is announced to the responsible head
    at registration (第一时间), or at the next opening if it came in after hours; a reminder goes
    out `remind_before_s` ahead of the deadline, moved back to the opening of the last working
    day before that if it would fall outside hours (never 20:00 on the due day); a deadline
    passed at midnight is escalated at the next opening. `at`: the complaint's `marks`, when
    the caller keeps them."""
    out: list[Alarm] = []
    if not c.open:
        return out
    m = at if at is not None else marks(c, settings, calendar, tz, hours)
    d = m.deadline
    if c.severity == "serious":
        if "serious" not in c.raised:
            out.append(Alarm("serious", c.hall, c.complaint_id))
    elif (
        d is not None
        and c.state == "registered"
        and not c.raised & {"registered:verify", "remind:verify", "overdue:verify"}
        and now >= m.registered_at
    ):
        out.append(Alarm("registered", c.hall, c.complaint_id, "verify", d.due_at))
    if d is None:
        return out
    if now >= m.overdue_at:
        a = Alarm("overdue", c.hall, c.complaint_id, d.stage, d.due_at)
    elif now < d.due_at and now >= m.remind_at:
        a = Alarm("remind", c.hall, c.complaint_id, d.stage, d.due_at)
    else:
        return out
    # An overdue stage needs no late reminder; a stage reminded and then overdue gets both.
    if a.flag not in c.raised:
        out.append(a)
    return out


def raised(c: Complaint, alarm: Alarm, at: float) -> tuple[Complaint, Step]:
    """The complaint with `alarm` recorded as raised, and the history step saying so."""
    action = {"serious": "reported", "registered": "notified"}.get(alarm.kind, alarm.kind)
    data = {"stage": alarm.stage} if alarm.stage else {}
    if alarm.due_at is not None:
        data["due_at"] = str(alarm.due_at)
    new = replace(c, raised=c.raised | {alarm.flag})
    return new, Step(at, action, "hallwatch", c.state, "", data)


@dataclass(frozen=True, slots=True)
class HallCounts:
    open: int = 0
    due_soon: int = 0
    overdue: int = 0


def counts(
    complaints: Iterable[Complaint],
    now: float,
    settings: ComplaintSettings,
    calendar: WorkCalendar,
    tz: str,
    deadline_of: Callable[[Complaint], Deadline | None] | None = None,
) -> dict[str, HallCounts]:
    """Per hall: open complaints, those due within `remind_before_s`, and those overdue.
    `deadline_of`: the complaint's deadline, when the caller keeps them."""
    acc: dict[str, list[int]] = {}
    for c in complaints:
        if not c.open:
            continue
        row = acc.setdefault(c.hall, [0, 0, 0])
        row[0] += 1
        d = deadline(c, settings, calendar, tz) if deadline_of is None else deadline_of(c)
        if d is None:
            continue
        if now >= d.due_at:
            row[2] += 1
        elif now >= d.due_at - settings.remind_before_s:
            row[1] += 1
    return {h: HallCounts(*v) for h, v in sorted(acc.items())}


def alarm_text(alarm: Alarm, c: Complaint, hall_name: str, tz: str) -> tuple[str, list[str]]:
    """(title, markdown lines) of an alarm's notice, in Chinese; the phone stays masked."""
    zone = ZoneInfo(tz)
    due = (
        datetime.fromtimestamp(alarm.due_at - 1, zone).strftime("%m月%d日")
        if alarm.due_at is not None
        else ""
    )
    stage = {"verify": "核查并提出拟办意见", "answer": "答复当事人", "follow_up": "回访"}.get(
        alarm.stage, ""
    )
    if alarm.kind == "serious":
        title = "严重投诉"
        head = "情形严重，按预案报市公积金中心主任室"
    elif alarm.kind == "registered":
        title = "新投诉"
        head = f"已受理登记，请于{due}前{stage}"
    elif alarm.kind == "overdue":
        title = "投诉超期"
        head = f"已超过期限（{due}）未{stage}，请督办"
    else:
        title = "投诉到期提醒"
        head = f"请于{due}前{stage}"
    received = datetime.fromtimestamp(c.received_at, zone).strftime("%m月%d日 %H:%M")
    lines = [
        f"> {head}",
        f"**编号**：{c.complaint_id}　**状态**：{STATE_NAMES.get(c.state, c.state)}",
        f"**受理**：{received}，{c.received_by}（{c.department}，现由{c.assignee}负责）",
        f"**内容**：{c.summary[:200]}",
    ]
    if c.phone:
        lines.append(f"**联系电话**：{mask_phone(c.phone)}")
    return f"【{title}】{hall_name}", lines
