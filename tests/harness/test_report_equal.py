"""The report comparison the PostgreSQL proofs end with (tests/harness/report_equal.py): the
generation time is not content, any changed cell or missing table is."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest
from hallwatch.daemon.reports import html as report_html
from hallwatch.daemon.reports.figures import build
from hallwatch.daemon.reports.inputs import Period, ReportSettings

from tests.harness.report_equal import ReportsDiffer, assert_same, report_content


def test_generation_time_differs_content_does_not(tmp_path: Path) -> None:
    """Two writes of one report at different times compare equal; a cell changed in a CSV,
    or a table missing, makes `assert_same` raise naming the file and line."""
    day = date(2026, 3, 4)
    rep = build(Period(day, day), [], ReportSettings(), generated_at=1.0e9)
    report_html.write(rep, tmp_path / "a")
    report_html.write(dataclasses.replace(rep, generated_at=1.7e9), tmp_path / "b")
    a, b = report_content(tmp_path / "a"), report_content(tmp_path / "b")
    assert (tmp_path / "a" / "report.html").read_bytes() != (
        tmp_path / "b" / "report.html"
    ).read_bytes()
    assert_same(a, b, "same report")
    changed = {**b, "01-summary.csv": b["01-summary.csv"] + "h9,1,2,3\n"}
    with pytest.raises(ReportsDiffer, match=r"01-summary\.csv"):
        assert_same(a, changed, "changed")
    with pytest.raises(ReportsDiffer, match=r"04-system-outages\.csv: only in the first"):
        assert_same(a, {k: v for k, v in b.items() if k != "04-system-outages.csv"}, "missing")
