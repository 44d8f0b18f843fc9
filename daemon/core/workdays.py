"""Working days on China's official calendar, including the weekend days that become working days.

The published schedule comes from the `chinese-calendar` package; the config can add or correct
days (`[calendar] holidays`, `workdays`) and declare a year complete (`complete_years`) once the
State Council's notice for it is entered. For a year neither covers, we do not guess: the day
falls back to Monday-Friday, and `coverage_problem` says so loudly, so an operator fixes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

try:  # the package is a dependency; tolerate its absence only to fail loudly later
    import chinese_calendar as _cc
except ImportError:  # pragma: no cover
    _cc = None


def package_years() -> frozenset[int]:
    """Years the installed chinese-calendar package has official data for."""
    if _cc is None:
        return frozenset()
    days = list(_cc.holidays) + list(_cc.workdays)
    return frozenset(d.year for d in days)


class WorkCalendar:
    """Whether a date is a working day; pure, built once from the settings."""

    def __init__(
        self,
        *,
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        complete_years: Iterable[int] = (),
        use_package: bool = True,
    ) -> None:
        self.holidays = frozenset(holidays)
        self.workdays = frozenset(workdays)
        self.package = package_years() if use_package else frozenset()
        self.covered = self.package | frozenset(complete_years)
        # The complaint desk asks for every open complaint's deadline on each check: at 500
        # halls, 70 % of the idle daemon's CPU went into the same few answers (#14).
        self._after: dict[tuple[date, int], date] = {}
        self._day: dict[date, bool] = {}

    def is_working_day(self, day: date) -> bool:
        # Kept too: the complaint desk's working-hours arithmetic asks it for the same few
        # days on every check (60 % of an idle daemon's CPU at 500 halls before).
        hit = self._day.get(day)
        if hit is None:
            if len(self._day) > 10_000:
                self._day.clear()
            hit = self._day[day] = self._working(day)
        return hit

    def _working(self, day: date) -> bool:
        if day in self.holidays:
            return False
        if day in self.workdays:
            return True
        if day.year in self.package and _cc is not None:
            return bool(_cc.is_workday(day))
        return day.weekday() < 5

    def working_days_after(self, start: date, n: int) -> date:
        """The date `n` working days after `start` (a deadline "within n working days")."""
        hit = self._after.get((start, n))
        if hit is not None:
            return hit
        if len(self._after) > 10_000:
            self._after.clear()
        day, left = start, n
        while left > 0:
            day = date.fromordinal(day.toordinal() + 1)
            if self.is_working_day(day):
                left -= 1
        self._after[(start, n)] = day
        return day

    def coverage_problem(self, today: date) -> str | None:
        """A message when this year or next has no official schedule; None when both do."""
        missing = [y for y in (today.year, today.year + 1) if y not in self.covered]
        if not missing:
            return None
        years = ", ".join(str(y) for y in missing)
        return (
            f"working-day calendar has no official holiday schedule for {years}: "
            "add the State Council's holidays and make-up working days to [calendar] "
            "holidays/workdays and list the year in complete_years, or upgrade chinese-calendar"
        )
