"""The fault-and-load suite's report: what one run measured, and its text (faultload.py runs it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROVINCE_HALLS = 100  # a busy province: ~20 cities' fund centres with about five halls each
STEADY_MARGIN_S = 5.0


@dataclass
class Recovery:
    fault: str
    at_s: float  # seconds into the run
    healthy_s: float
    caught_up_s: float


@dataclass
class Report:
    halls: int
    speed: float
    duration_s: float
    rate_per_s: float = 0.0
    province_rate_per_s: float = 0.0
    published: int = 0
    stored: int = 0
    duplicated: int = 0
    lost: int = 0
    skewed: int = 0
    far_future: int = 0
    far_future_rejected: int = 0
    far_future_stored: int = 0
    other_rejects: int = 0
    redelivered_dropped: int = 0
    notes_due: int = 0
    notes_delivered: int = 0
    notes_duplicated: int = 0
    notes_lost: int = 0
    notes_by_channel: dict[str, int] = field(default_factory=dict)
    provider_refusals: dict[str, int] = field(default_factory=dict)
    notes_resent_deduped: int = 0  # sent again, answered "duplicate" by the gateway's key
    note_repeats: list[str] = field(default_factory=list)  # what was sent more than once
    halls_over_threshold: int = 0
    halls_alerted: int = 0
    state_halls_match: int = 0
    state_halls: int = 0
    latency_all: tuple[float, float, float] = (0.0, 0.0, 0.0)  # p50, p99, max
    latency_steady: tuple[float, float, float] = (0.0, 0.0, 0.0)
    latency_slow_disk: tuple[float, float, float] = (0.0, 0.0, 0.0)
    peak_rss_mib: float = 0.0
    daemon_processes: int = 0
    recoveries: list[Recovery] = field(default_factory=list)
    slow_disk: str = "not run"
    disk_full: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    workdir: str = ""

    @property
    def ok(self) -> bool:
        """Zero lost and duplicated in both columns, bad clocks rejected, the disk-full checks."""
        full_ok = not self.disk_full or bool(self.disk_full.get("ok"))
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.notes_lost == 0
            and self.notes_duplicated == 0
            and self.far_future_rejected == self.far_future
            and self.far_future_stored == 0
            and self.state_halls_match == self.state_halls
            and full_ok
        )

    def render(self) -> str:
        def ms(t: tuple[float, float, float]) -> str:
            return f"p50 {t[0] * 1000:.0f} ms, p99 {t[1] * 1000:.0f} ms, max {t[2] * 1000:.0f} ms"

        multiple = self.rate_per_s / self.province_rate_per_s if self.province_rate_per_s else 0
        findings: list[str] = []
        lines = [
            "hallwatch fault-and-load report",
            f"load: {self.halls} halls x {self.speed:g} real time for {self.duration_s:.0f} s:"
            f" {self.rate_per_s:.0f} events/s = {multiple:.1f}x a busy province"
            f" ({PROVINCE_HALLS} halls on a peak day: {self.province_rate_per_s:.0f} events/s)",
            "",
            f"{'':24}{'published/due':>14}{'stored/delivered':>18}{'duplicated':>12}{'lost':>6}",
            f"{'events':24}{self.published:>14}{self.stored:>18}{self.duplicated:>12}"
            f"{self.lost:>6}",
            f"{'notifications':24}{self.notes_due:>14}{self.notes_delivered:>18}"
            f"{self.notes_duplicated:>12}{self.notes_lost:>6}",
            "",
            f"events with device clock a few seconds off (stored): {self.skewed}",
            f"events stamped hours/a day ahead: {self.far_future} published,"
            f" {self.far_future_rejected} rejected as bad_ts, {self.far_future_stored} stored",
            f"other rejections: {self.other_rejects}; redeliveries dropped by id:"
            f" {self.redelivered_dropped}",
            f"state check: issued tickets per hall equal to published in"
            f" {self.state_halls_match}/{self.state_halls} halls",
            "notifications by channel: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.notes_by_channel.items())),
            "provider refusals while failing (retried): "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.provider_refusals.items())),
            "sent again after a kill -9 and dropped by the SMS gateway's Idempotency-Key:"
            f" {self.notes_resent_deduped}",
            *("  " + r for r in self.note_repeats),
            f"queue_peak (20 people held for 5 s): {self.halls_over_threshold} halls reached"
            f" 20 people, {self.halls_alerted} alerted",
            "",
            f"latency publish -> stored+applied, all events: {ms(self.latency_all)}",
            f"  outside faults (none within {STEADY_MARGIN_S:g} s): {ms(self.latency_steady)}",
            f"  during the slow disk: {ms(self.latency_slow_disk)}",
            f"daemon peak memory (VmHWM, largest of {self.daemon_processes} processes):"
            f" {self.peak_rss_mib:.0f} MiB",
            f"slow disk: {self.slow_disk}",
            "recovery (fault -> healthy / every event published before it stored):",
        ]
        for r in self.recoveries:
            lines.append(
                f"  {r.fault:<16} at {r.at_s:6.1f} s: healthy {r.healthy_s:5.2f} s,"
                f" caught up {r.caught_up_s:5.2f} s"
            )
        if self.disk_full:
            lines.append("disk full: " + str(self.disk_full.get("summary", "")))
            if self.disk_full.get("names_path") is False:
                findings.append(
                    "disk full: the daemon's error does not name the database path (see above)"
                )
            for line in self.disk_full.get("lines", []):
                lines.append("  " + line)
        if findings:
            lines += ["", "findings (not counted in the result):"] + ["  " + f for f in findings]
        lines += [
            "",
            f"result: {'PASS' if self.ok else 'FAIL'}"
            f" (run took {self.wall_s:.0f} s; files in {self.workdir})",
        ]
        return "\n".join(lines)
