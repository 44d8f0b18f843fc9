"""The complaint procedure, pure: states, deadlines on the official calendar, alarms, figures."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hallwatch.daemon.base.pii import mask_phone
from hallwatch.daemon.config.staff import ComplaintSettings
from hallwatch.daemon.core.hours import Hours
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.staff import complaints as cp
from hallwatch.daemon.staff.complaints import Complaint, ComplaintError

TZ = "Asia/Shanghai"
S = ComplaintSettings()
CAL = WorkCalendar()


def at(text: str) -> float:
    return datetime.fromisoformat(text + "+08:00").timestamp()


def new(received: str, **kw: object) -> Complaint:
    fields: dict[str, object] = {
        "hall": "h1",
        "complaint_id": "c1",
        "channel": "visit",
        "severity": "normal",
        "summary": "窗口人员态度生硬",
        "received_by": "张三",
        "received_at": at(received),
        "phone": "13812348000",
    }
    fields.update(kw)
    c, _ = cp.register(settings=S, **fields)  # type: ignore[arg-type]
    return c


def due(c: Complaint, cal: WorkCalendar = CAL) -> str:
    d = cp.deadline(c, S, cal, TZ)
    assert d is not None
    return datetime.fromtimestamp(d.due_at - 1, cp.ZoneInfo(TZ)).strftime("%Y-%m-%d %a")


@pytest.mark.parametrize(
    ("received", "last_day", "why"),
    [
        ("2026-11-26T10:00", "2026-11-30 Mon", "Thursday: Friday, then Monday over the weekend"),
        ("2026-11-27T16:30", "2026-12-01 Tue", "Friday: Monday and Tuesday"),
        ("2026-09-30T11:00", "2026-10-09 Fri", "before National Day: Oct 1-7 are holidays"),
        ("2026-10-08T09:00", "2026-10-10 Sat", "the Saturday Oct 10 is a make-up working day"),
        ("2026-11-28T10:00", "2026-12-01 Tue", "received on a Saturday: Monday and Tuesday"),
    ],
)
def test_two_working_days_follow_the_official_calendar(
    received: str, last_day: str, why: str
) -> None:
    """The proposal is due at the end of the 2nd working day after receipt, on China's calendar."""
    assert due(new(received)) == last_day, why


def test_config_corrections_move_the_deadline() -> None:
    """A holiday or make-up day added in [calendar] changes the deadline (2027 is not published)."""
    c = new("2027-02-04T10:00")  # a Thursday
    assert due(c) == "2027-02-08 Mon"
    fixed = WorkCalendar(holidays=[date(2027, 2, 5)], workdays=[date(2027, 2, 6)])
    assert due(c, fixed) == "2027-02-08 Mon"  # Fri off, Sat worked: Sat, Mon
    two_off = WorkCalendar(holidays=[date(2027, 2, 5), date(2027, 2, 8)])
    assert due(c, two_off) == "2027-02-10 Wed"  # Fri and Mon off: Tue, Wed


def test_the_whole_procedure_records_who_and_when() -> None:
    """registered -> verified -> approved -> answered -> followed_up -> archived, each a step."""
    c = new("2026-11-26T10:00")
    steps = []
    for action, who, extra in [
        ("verify", "李四", {"proposal": "当面致歉并加强培训"}),
        ("approve", "王主任", {}),
        ("answer", "李四", {"note": "电话答复，当事人接受"}),
        ("follow_up", "王主任", {}),
        ("archive", "李四", {}),
    ]:
        c, step = cp.apply(c, action, actor=who, at=at("2026-11-27T10:00"), **extra)  # type: ignore[arg-type]
        steps.append((step.action, step.actor, step.state))
    assert steps == [
        ("verify", "李四", "verified"),
        ("approve", "王主任", "approved"),
        ("answer", "李四", "answered"),
        ("follow_up", "王主任", "followed_up"),
        ("archive", "李四", "archived"),
    ]
    assert c.proposal == "当面致歉并加强培训" and not c.open
    assert cp.deadline(c, S, CAL, TZ) is None


def test_steps_out_of_order_are_refused() -> None:
    """Approving before verifying, verifying without a proposal, or acting anonymously fail."""
    c = new("2026-11-26T10:00")
    with pytest.raises(ComplaintError) as err:
        cp.apply(c, "approve", actor="王主任", at=at("2026-11-26T11:00"))
    assert err.value.code == "bad_state"
    with pytest.raises(ComplaintError):
        cp.apply(c, "verify", actor="李四", at=at("2026-11-26T11:00"))
    with pytest.raises(ComplaintError):
        cp.apply(c, "verify", actor=" ", at=at("2026-11-26T11:00"), proposal="x")
    with pytest.raises(ComplaintError):
        cp.apply(c, "fly", actor="李四", at=at("2026-11-26T11:00"))


def test_transfer_hands_over_without_buying_time() -> None:
    """A transfer moves it to the other department's person and keeps the receipt's deadline."""
    c = new("2026-11-26T10:00")
    before = cp.deadline(c, S, CAL, TZ)
    c, step = cp.apply(c, "verify", actor="李四", at=at("2026-11-26T11:00"), proposal="x")
    c, step = cp.apply(
        c,
        "transfer",
        actor="李四",
        at=at("2026-11-26T12:00"),
        to_department="贷款部",
        to_person="赵六",
    )
    assert (c.state, c.department, c.assignee, c.proposal) == ("registered", "贷款部", "赵六", "")
    assert step.data["from_department"] == "服务大厅"
    assert cp.deadline(c, S, CAL, TZ) == before


def kinds(c: Complaint, when: str, hours: Hours = cp.DEFAULT_HOURS) -> list[str]:
    return [a.flag for a in cp.alarms(c, at(when), S, CAL, TZ, hours)]


def test_reminder_then_overdue_then_nothing_more() -> None:
    """The head hears of a new complaint at registration; the reminder comes at the opening of
    the due day (not 20:00), the escalation at the next opening (not midnight); each once."""
    c = new("2026-11-27T16:30")  # Friday; due end of Tue 2026-12-01
    (notice,) = cp.alarms(c, at("2026-11-27T16:30"), S, CAL, TZ)
    assert (notice.kind, notice.stage, notice.key) == (
        "registered",
        "verify",
        "complaint/h1/c1/registered:verify",
    )
    c, step = cp.raised(c, notice, at("2026-11-27T16:30"))
    assert step.action == "notified" and step.actor == "hallwatch"
    assert kinds(c, "2026-11-30T17:00") == []
    assert kinds(c, "2026-12-01T08:59") == []
    (remind,) = cp.alarms(c, at("2026-12-01T09:00"), S, CAL, TZ)
    assert (remind.kind, remind.stage) == ("remind", "verify")
    c, step = cp.raised(c, remind, at("2026-12-01T09:00"))
    assert step.action == "remind" and step.actor == "hallwatch"
    assert kinds(c, "2026-12-01T21:00") == []
    assert kinds(c, "2026-12-02T00:00") == []  # overdue since midnight, but nobody is at work
    (over,) = cp.alarms(c, at("2026-12-02T09:00"), S, CAL, TZ)
    assert (over.kind, over.stage) == ("overdue", "verify")
    c, _ = cp.raised(c, over, at("2026-12-02T09:00"))
    assert kinds(c, "2026-12-03T10:00") == []
    assert over.key == "complaint/h1/c1/overdue:verify"


def test_no_complaint_notice_falls_outside_working_hours() -> None:
    """For complaints received at every hour of a week, each notice of a normal complaint falls
    on a working day between the hall's opening and closing, and every reminder before its
    deadline; a hall with its own hours (08:30-12:00) is used, not the default."""
    hours = Hours(time(8, 30), time(12, 0))
    start = at("2026-09-28T00:00")  # over National Day (10-01..07) and make-up Saturday 10-10
    seen: set[str] = set()
    for h in range(0, 24 * 9, 5):
        c = new("2026-09-28T00:00", received_at=start + h * 3600)
        t = c.received_at
        while c.open and t < c.received_at + 30 * 86400:
            due = cp.alarms(c, t, S, CAL, TZ, hours)
            for a in due:
                local = datetime.fromtimestamp(t, ZoneInfo(TZ))
                assert CAL.is_working_day(local.date()), (a, local)
                assert time(8, 30) <= local.time() < time(12, 0), (a, local)
                if a.kind == "remind":
                    assert a.due_at is not None and t < a.due_at
                seen.add(a.kind)
                c, _ = cp.raised(c, a, t)
            if "overdue:verify" in c.raised:
                break
            t += 600
    assert seen == {"registered", "remind", "overdue"}


def test_a_complaint_received_at_night_is_announced_at_the_next_opening() -> None:
    """Registered on the evening before National Day, the head hears of it at 09:00 on the
    first working day after the holiday (Thursday 8 October), not at 21:00 nor in the holiday."""
    c = new("2026-09-30T21:00")
    assert kinds(c, "2026-09-30T21:00") == []
    assert kinds(c, "2026-10-05T10:00") == []
    assert kinds(c, "2026-10-08T08:59") == []
    assert kinds(c, "2026-10-08T09:00") == ["registered:verify"]


def test_serious_complaints_are_reported_at_once() -> None:
    """A serious complaint, or one escalated as serious, alarms the director's office at once."""
    c = new("2026-11-26T10:00", severity="serious")
    (a,) = cp.alarms(c, at("2026-11-26T10:00"), S, CAL, TZ)
    assert a.kind == "serious"
    title, lines = cp.alarm_text(a, c, "市中心大厅", TZ)
    assert "严重投诉" in title and "主任室" in lines[0]
    assert any("138****8000" in line for line in lines)
    assert not any("13812348000" in line for line in lines)
    n = new("2026-11-26T10:00")
    n, _ = cp.apply(n, "escalate", actor="张三", at=at("2026-11-26T10:05"))
    assert [x.kind for x in cp.alarms(n, at("2026-11-26T10:05"), S, CAL, TZ)] == ["serious"]


def test_counts_by_hall() -> None:
    """Open, due soon and overdue per hall; archived ones are not counted."""
    now = at("2026-12-01T21:00")
    done = new("2026-11-20T10:00", complaint_id="c0")
    for action, extra in [("verify", {"proposal": "p"}), ("approve", {}), ("answer", {})]:
        done, _ = cp.apply(done, action, actor="x", at=at("2026-11-20T11:00"), **extra)  # type: ignore[arg-type]
    for action in ("follow_up", "archive"):
        done, _ = cp.apply(done, action, actor="x", at=at("2026-11-20T12:00"))
    rows = [
        new("2026-11-27T16:30", complaint_id="soon"),
        new("2026-11-20T10:00", complaint_id="late"),
        new("2026-12-01T10:00", complaint_id="fresh"),
        new("2026-12-01T10:00", complaint_id="other", hall="h2"),
        done,
    ]
    got = cp.counts(rows, now, S, CAL, TZ)
    assert got == {"h1": cp.HallCounts(3, 1, 1), "h2": cp.HallCounts(1, 0, 0)}


def test_phone_numbers_are_masked_and_validated() -> None:
    """Mobile numbers show as 138****8000; what is not a number is refused."""
    assert mask_phone("13812348000") == "138****8000"
    assert mask_phone("+86 138-1234-8000") == "138****8000"
    assert mask_phone(None) is None
    assert cp.clean_phone("138 1234 8000") == "13812348000"
    with pytest.raises(ComplaintError):
        cp.clean_phone("call me")


def test_registration_checks_the_contract_fields() -> None:
    """Unknown channel or severity, or a missing receiver, are refused with a code."""
    for bad, code in [
        ({"channel": "fax"}, "bad_channel"),
        ({"severity": "mild"}, "bad_severity"),
        ({"received_by": ""}, "missing_field"),
        ({"hall": "h 1"}, "bad_hall"),
    ]:
        with pytest.raises(ComplaintError) as err:
            new("2026-11-26T10:00", **bad)
        assert err.value.code == code
