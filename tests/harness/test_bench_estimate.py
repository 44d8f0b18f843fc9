"""The estimate bench's table on a small slice: families x predictors, ratio and coverage."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.harness.bench_estimate import SEEDS, main


def test_the_estimate_bench_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bench estimate` on the development `quiet` halls, cold: a row per batch and the family,
    with every predictor's MAE, the ratio to the best classic one and the P10-P90 coverage; the
    held-out seeds stay where the committed file fixed them."""
    out = tmp_path / "fig.json"
    assert (
        main(
            [
                "--set",
                "development",
                "--families",
                "quiet",
                "--modes",
                "cold",
                "--jobs",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "development, cold" in text and "daemon" in text and "ql_ab" in text
    rows = [line for line in text.splitlines() if line.startswith("quiet ")]
    assert [r.split()[1] for r in rows] == ["1-3", "4-6", "7-9", "10-12", "all"]
    for r in rows:
        assert re.search(r" \d\.\d{3} (ql|ql_ab|les|hol) +\d\.\d\d \(\d\.\d\d/\d\.\d\d\)", r), r
    fig = json.loads(out.read_text())["development"]["cold/quiet"]["all"]
    assert 0 < fig["coverage"]["inside"] <= 1 and fig["mae_ratio"] > 0
    assert 0 < fig["coverage"]["inside_waited"] <= 1 and fig["coverage"]["n_waited"] > 0
    assert "waited (below/above)" in text
    seeds = json.loads(SEEDS.read_text())
    assert seeds["held_out"]["batches"][0] == [9001, 9002, 9003, 9004]
    held = {s for batch in seeds["held_out"]["batches"] for s in batch}
    dev = {s for batch in seeds["development"]["batches"] for s in batch}
    assert held and dev and not held & dev
