"""The fault-and-load suite, short: real Mosquitto, the daemon killed and the broker restarted
under simulated traffic, providers failing, a slow and then a full disk."""

from __future__ import annotations

from pathlib import Path

from tests.harness.faultload import run_faultload


def test_smoke_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """3 halls at 120x for 25 s with one kill -9 and one broker restart: every valid event is
    stored once, every notification delivered once, bad clocks refused, and the disk-full
    phase keeps the database intact and unacknowledged events for later."""
    report = run_faultload(
        halls=3, speed=120, duration_s=25, kills=1, broker_restarts=1, seed=2, out=tmp_path
    )
    text = report.render()
    assert report.published > 3000, text
    assert report.stored == report.published, text
    assert report.lost == report.duplicated == 0, text
    assert report.notes_due > 0, text  # the peak really fired and went through the outbox
    assert report.notes_lost == report.notes_duplicated == 0, text
    assert report.far_future_rejected == report.far_future == 9, text
    assert report.state_halls_match == report.state_halls == 3, text
    assert [r.fault for r in report.recoveries] == ["kill -9 #1", "broker restart #1"], text
    assert report.peak_rss_mib > 0, text
    # On the full disk (run when root can mount a tiny tmpfs) the error names the database.
    assert report.disk_full.get("names_path") in (True, None), text
    assert report.ok, text
