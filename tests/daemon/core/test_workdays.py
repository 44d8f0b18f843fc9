"""The working-day calendar: official schedule, config corrections, and loud coverage gaps."""

from __future__ import annotations

from datetime import date

from hallwatch.daemon.core.workdays import WorkCalendar, package_years


def test_official_holiday_and_makeup_day_from_the_package():
    """National Day 2026-10-01 is off; the package knows 2026, so Monday-Friday is not assumed."""
    cal = WorkCalendar()
    assert 2026 in package_years()
    assert cal.is_working_day(date(2026, 10, 1)) is False
    assert cal.is_working_day(date(2026, 11, 26)) is True  # an ordinary Thursday
    assert cal.is_working_day(date(2026, 11, 28)) is False  # an ordinary Saturday


def test_config_adds_a_makeup_working_saturday_and_a_holiday():
    """Config corrections win over the weekday rule for a year the package does not cover."""
    cal = WorkCalendar(holidays=[date(2027, 2, 8)], workdays=[date(2027, 2, 20)])
    assert cal.is_working_day(date(2027, 2, 20)) is True  # a Saturday made a working day
    assert cal.is_working_day(date(2027, 2, 8)) is False  # a Monday holiday


def test_deadline_counts_working_days_across_weekend_and_holiday():
    """Two working days after a Thursday, with Friday a holiday, is the next Tuesday."""
    cal = WorkCalendar(holidays=[date(2027, 1, 8)], use_package=False)
    assert cal.working_days_after(date(2027, 1, 7), 2) == date(2027, 1, 12)
    assert WorkCalendar(use_package=False).working_days_after(date(2027, 1, 7), 2) == date(
        2027, 1, 11
    )


def test_missing_next_year_is_reported_until_declared_complete():
    """Without next year's official schedule the calendar says so; declaring the year ends it."""
    cal = WorkCalendar(complete_years=[2039])
    problem = cal.coverage_problem(date(2039, 11, 26))
    assert problem is not None and "2040" in problem and "2039" not in problem
    assert WorkCalendar(complete_years=[2039, 2040]).coverage_problem(date(2039, 11, 26)) is None


def test_working_days_after_answers_the_same_when_asked_again() -> None:
    """The kept answers (the complaint desk asks the same deadlines on every check) equal a
    fresh calendar's, across the National Day week and a made-up holiday."""
    from datetime import date, timedelta

    from hallwatch.daemon.core.workdays import WorkCalendar

    kw = {"holidays": [date(2026, 11, 27)], "complete_years": [2026]}
    kept = WorkCalendar(**kw)  # type: ignore[arg-type]
    for _ in range(2):
        for i in range(0, 120, 3):
            start = date(2026, 9, 20) + timedelta(days=i)
            for n in (1, 5, 15):
                fresh = WorkCalendar(**kw)  # type: ignore[arg-type]
                assert kept.working_days_after(start, n) == fresh.working_days_after(start, n)
    assert kept.working_days_after(date(2026, 11, 26), 1) == date(2026, 11, 30)
