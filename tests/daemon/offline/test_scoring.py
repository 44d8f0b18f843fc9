"""Tests of offline.scoring: replay scoring, the estimates CSV, and the bar on simulated days."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hallwatch.daemon.offline.scoring import CSV_COLUMNS, Row, coverage, score, simulated_messages

from tests.factories import at, payload

T0 = at("2026-11-26T10:00")


def msg(kind: str, ts: float, **fields: object) -> tuple[str, bytes]:
    ms = int(ts * 1000)
    return f"hall/h1/{kind}", payload(
        id=f"x:{ms}:{fields.get('type', kind)}:{fields.get('ticket', '')}", ts=ms, **fields
    )


def tiny_day() -> list[tuple[str, bytes]]:
    w = {"window": "w1"}
    return [
        msg("window/w1", T0, state="open", services=["gjj"]),
        msg("ticket", T0 + 10, type="issued", ticket="A001", service="gjj"),
        msg("ticket", T0 + 10, type="called", ticket="A001", **w),
        msg("ticket", T0 + 20, type="issued", ticket="A002", service="gjj"),
        msg("ticket", T0 + 400, type="completed", ticket="A001", **w),
        msg("ticket", T0 + 410, type="called", ticket="A002", **w),
        msg("ticket", T0 + 420, type="issued", ticket="C001", service="loan"),
        msg("ticket", T0 + 430, type="issued", ticket="A003", service="gjj"),
        msg("ticket", T0 + 440, type="cancelled", ticket="A003"),
    ]


def test_rows_pair_estimates_with_actual_waits() -> None:
    """Each issued ticket is a row; called ones get issued-to-called as the actual wait."""
    rows = {r.ticket: r for r in score(tiny_day()).rows}
    assert set(rows) == {"A001", "A002", "C001", "A003"}
    assert rows["A001"].actual_wait_s == 0.0 and rows["A001"].estimates["daemon"] == 0.0
    assert rows["A002"].actual_wait_s == 390.0
    assert rows["C001"].estimates["daemon"] is None  # no window serves loans
    assert rows["A003"].actual_wait_s is None  # cancelled, never called


def test_summary_mae_and_rase_hand_computed() -> None:
    """MAE and RASE over the two called tickets, for the daemon and the QL baseline."""
    report = score(tiny_day())
    a002 = next(r for r in report.rows if r.ticket == "A002")
    est, ql = a002.estimates["daemon"], a002.estimates["ql"]
    assert est is not None and ql is not None
    s = report.summary()
    assert s["scored"] == 2
    assert s["overall"]["daemon"]["mae_s"] == pytest.approx(abs(est - 390.0) / 2, abs=0.05)
    assert s["overall"]["ql"]["mae_s"] == pytest.approx(abs(ql - 390.0) / 2, abs=0.05)
    rase = (((est - 390.0) ** 2) / 2) ** 0.5 / 195.0
    assert s["overall"]["daemon"]["rase"] == pytest.approx(rase, abs=1e-3)
    assert set(s["by_service"]) == {"gjj"}


def test_csv_has_one_row_per_issued_ticket(tmp_path: Path) -> None:
    """The CSV has the contract's columns; empty fields for no estimate and no call."""
    out = tmp_path / "est.csv"
    score(tiny_day()).write_csv(out)
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    by = {r["ticket"]: r for r in rows}
    assert by["C001"]["estimated_wait_s"] == "" and by["C001"]["actual_wait_s"] == ""
    assert by["A003"]["actual_wait_s"] == ""
    assert by["A002"]["actual_wait_s"] == "390.0"


def test_duplicates_are_scored_once() -> None:
    """A redelivered message (same id) does not add a row or move the actual wait."""
    day = tiny_day()
    assert len(score(day + day[1:3]).rows) == len(score(day).rows)


# Pinned seeds; `python -m hallwatch.daemon.offline.scoring --seeds 1-10`
# reports the spread over seeds.
@pytest.mark.parametrize(
    ("profile", "seed"), [("normal", 2), ("peak", 2), ("outage", 2), ("quiet", 1)]
)
def test_daemon_beats_the_best_classic_predictor(profile: str, seed: int) -> None:
    """On a simulated day the daemon's MAE is at most 0.8 times the best classic predictor's."""
    s = score(simulated_messages(profile, seed)).summary()
    assert s["scored"] > 50
    assert s["mae_ratio"] is not None and s["mae_ratio"] <= 0.8, s["overall"]


def test_the_coverage_that_counts_is_over_the_tickets_that_waited() -> None:
    """Coverage over rows by hand: `inside_waited` only counts tickets that actually waited a
    minute or more (a 0 s wait inside any range does not count), with its below/above split;
    `inside_told` is over those told to wait a minute or more."""

    def row(est: float, actual: float, lo: float, hi: float) -> Row:
        return Row("h1", "t", "gjj", "normal", T0, {"daemon": est}, actual, lo, hi)

    rows = [
        row(0.0, 0.0, 0.0, 48.0),  # called at once: inside, not waited
        row(0.0, 0.0, 0.0, 48.0),
        row(0.0, 90.0, 0.0, 48.0),  # waited, above
        row(300.0, 200.0, 250.0, 500.0),  # waited, below
        row(300.0, 320.0, 250.0, 500.0),  # waited, inside
        row(300.0, 30.0, 250.0, 500.0),  # told to wait, did not: below
    ]
    c = coverage(rows)
    assert c["inside"] == pytest.approx(3 / 6, abs=1e-3)
    assert (c["n_waited"], c["inside_waited"]) == (3, pytest.approx(1 / 3, abs=1e-3))
    assert c["below_waited"] == pytest.approx(1 / 3, abs=1e-3)
    assert c["above_waited"] == pytest.approx(1 / 3, abs=1e-3)
    assert (c["n_told"], c["inside_told"]) == (3, pytest.approx(1 / 3, abs=1e-3))
