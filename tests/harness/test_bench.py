"""`bench users --quick` on tiny sizes: every figure of issue #14 is printed, and sane."""

from __future__ import annotations

import math
import subprocess
import sys

from tests import REPO

FIGURES = [
    "ingest events/s (20 halls, 500 ev)",
    "ingest CPU s per 20,000 events",
    *(
        f"{what} @ {rate} ev/s, 2 halls"
        for rate in (100, 1000)
        for what in ("latency p50 ms", "latency p99 ms", "latency max ms", "estimates matched")
    ),
    *(
        f"{what} @ {halls} halls"
        for halls in (2, 3)
        for what in ("idle CPU % of a core", "RSS MiB", "scrape median ms", "scrape max ms")
    ),
    "scrape bytes @ 2 halls",
    "scrape bytes @ 3 halls",
]


def _number(text: str) -> float:
    return float(text.split()[0].lstrip(">").replace(",", ""))


def test_users_quick_prints_every_figure_with_a_finite_ratio() -> None:
    """Every figure (ingest, latency, idle CPU, RSS, scrape) is in the table, with daemon and
    baseline values > 0 (idle CPU >= 0) and a finite ratio; no timing is asserted."""
    cmd = [sys.executable, "-m", "tests.harness.bench", "users", "--quick"]
    cmd += ["--halls-small", "2", "--halls-large", "3", "--events", "500"]
    cmd += ["--latency-halls", "2", "--idle-s", "5"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=150)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    rows = {}
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 6 and cells[0] != "figure":
            rows[cells[0]] = cells
    for figure in FIGURES:
        key = next((k for k in rows if k.startswith(figure)), None)
        assert key is not None, f"{figure!r} missing from:\n{out}"
        _, daemon, baseline, ratio, _, _ = rows[key]
        lowest = 0.0 if figure.startswith("idle CPU") else 1e-9  # idle may round to 0 ticks
        assert _number(daemon) >= lowest, f"{figure}: daemon {daemon}\n{out}"
        assert _number(baseline) >= lowest, f"{figure}: baseline {baseline}\n{out}"
        assert math.isfinite(_number(ratio)), f"{figure}: ratio {ratio}\n{out}"
    assert "bench users:" in done.stdout, out
