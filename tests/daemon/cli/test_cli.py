"""The `hallwatch` command line: simulator knobs, replay reports, and clear errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def hallwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hallwatch.daemon.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_simulate_knobs_change_the_day_and_bad_knobs_are_refused(tmp_path: Path) -> None:
    """`--set` overrides a profile's knob (more arrivals); an unknown or invalid one exits 2."""
    base = hallwatch("simulate", "--profile", "quiet", "--out", str(tmp_path / "a.jsonl"))
    more = hallwatch(
        "simulate",
        "--profile",
        "quiet",
        "--set",
        "expected_arrivals=360",
        "--out",
        str(tmp_path / "b.jsonl"),
    )
    assert base.returncode == more.returncode == 0, base.stderr + more.stderr
    arrivals = [json.loads(p.stdout.splitlines()[-1])["arrivals"] for p in (base, more)]
    assert arrivals[1] > 2 * arrivals[0]
    assert (tmp_path / "b.truth.jsonl").exists()
    unknown = hallwatch("simulate", "--profile", "quiet", "--set", "nope=1", "--out", "x")
    assert unknown.returncode == 2 and "expected_arrivals" in unknown.stderr
    invalid = hallwatch("simulate", "--profile", "quiet", "--set", "green_share=2", "--out", "x")
    assert invalid.returncode == 2 and "green_share" in invalid.stderr


def test_replay_writes_estimates_csv_and_alert_lines(tmp_path: Path) -> None:
    """`replay --estimates-out --alerts-out` on a simulated peak morning: one CSV row per
    issued ticket, MAE of the daemon and the classic predictors, and a queue_peak firing."""
    day = tmp_path / "peak.jsonl"
    assert hallwatch("simulate", "--profile", "peak", "--out", str(day)).returncode == 0
    lines = day.read_text(encoding="utf-8").splitlines()
    morning = tmp_path / "morning.jsonl"
    cut = [ln for ln in lines if json.loads(ln)["payload"]["ts"][11:16] < "10:30"]
    morning.write_text("\n".join(cut) + "\n", encoding="utf-8")
    est, alerts = tmp_path / "est.csv", tmp_path / "alerts.jsonl"
    run = hallwatch(
        "replay", str(morning), "--estimates-out", str(est), "--alerts-out", str(alerts)
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    issued = summary["halls"]["h1"]["tickets"]["issued"]
    with est.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "hall",
        "ticket",
        "service",
        "priority",
        "issued_at",
        "estimated_wait_s",
        "actual_wait_s",
    ]
    assert len({r["ticket"] for r in rows}) == issued
    overall = summary["estimates"]["overall"]
    assert {"daemon", "ql", "les", "hol"} <= set(overall) and overall["daemon"]["mae_s"] > 0
    fired = [json.loads(ln) for ln in alerts.read_text(encoding="utf-8").splitlines()]
    peak = [a for a in fired if a["alert"] == "queue_peak" and a["state"] == "firing"]
    assert peak and "厅内" in peak[0]["summary"]


def test_replay_of_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    """A day file that is not there exits 2 with a message, not a traceback."""
    run = hallwatch("replay", str(tmp_path / "nope.jsonl"))
    assert run.returncode == 2 and "nope.jsonl" in run.stderr and "Traceback" not in run.stderr
