"""The report's SVG charts, by the slug of the table each illustrates."""

from __future__ import annotations

from datetime import datetime

from hallwatch.daemon.reports import svgchart
from hallwatch.daemon.reports.figures import Report
from hallwatch.daemon.reports.hallday import HallDay
from hallwatch.daemon.reports.tables import Fmt


def charts(r: Report) -> dict[str, list[str]]:
    """SVG charts by the slug of the table they illustrate."""
    f = Fmt(r)
    target_min = r.settings.target_wait_s / 60
    name = r.settings.hall_name
    out: dict[str, list[str]] = {}
    for d in r.days:
        if d.peaks and d.samples:
            out.setdefault("02-peak-episodes", []).append(_day_chart(d, r, f))
    for hall in r.halls:
        hours = r.by_hour(hall)
        cats = [f"{h.hour:02d}时" for h in hours]
        out.setdefault("09-service-by-hour", []).append(
            svgchart.bar_chart(
                cats,
                [svgchart.Series("日均取号", [h.issued_per_day for h in hours])],
                title=f"{name(hall)} 各时段日均取号",
                y_label="取号（张）",
            )
        )
        out["09-service-by-hour"].append(
            svgchart.bar_chart(
                cats,
                [
                    svgchart.Series("中位数", [_min(h.waits.median_s) for h in hours]),
                    svgchart.Series("90分位", [_min(h.waits.p90_s) for h in hours]),
                ],
                title=f"{name(hall)} 各时段等待时间",
                y_label="等待（分钟）",
                refs=[svgchart.Ref(target_min, "20分钟")],
            )
        )
        out["09-service-by-hour"].append(_heat(r, hall))
        services = r.by_service(hall)
        out.setdefault("10-service-by-service", []).append(
            svgchart.bar_chart(
                [s for s, *_ in services],
                [
                    svgchart.Series("等待中位数", [_min(w.median_s) for _, _, w, _ in services]),
                    svgchart.Series("等待90分位", [_min(w.p90_s) for _, _, w, _ in services]),
                    svgchart.Series("预计平均误差", [_min(a.mae_s) for _, _, _, a in services]),
                ],
                title=f"{name(hall)} 分业务等待时间与预计误差",
                y_label="分钟",
                refs=[svgchart.Ref(target_min, "20分钟")],
            )
        )
    if r.ranking:
        top = r.ranking[:15]
        out["12-device-ranking"] = [
            svgchart.hbar_chart(
                [f"{name(k.hall)} {k.device}" for k in top],
                [float(k.failures) for k in top],
                title="设备故障次数排名",
                value_labels=[f"{k.failures}次，停机{Fmt.dur(k.downtime_s)}" for k in top],
            )
        ]
    if r.complaints:
        halls = r.halls
        by_day: dict[str, list[float | None]] = {}
        for c in r.complaints:
            row = by_day.setdefault(f.at(c.received_at)[:10], [0.0] * len(halls))
            if c.hall in halls:
                row[halls.index(c.hall)] = (row[halls.index(c.hall)] or 0.0) + 1
        out["05-complaints"] = [
            svgchart.bar_chart(
                [d[5:] for d in by_day],
                [
                    svgchart.Series(name(h), [v[i] for v in by_day.values()])
                    for i, h in enumerate(halls)
                ],
                title="每日受理投诉",
                y_label="件",
            )
        ]
    return out


def _min(s: float | None) -> float | None:
    return None if s is None else s / 60


def _day_chart(d: HallDay, r: Report, f: Fmt) -> str:
    rule = r.settings.rules.for_hall(d.hall).queue_peak
    xs = [s.at for s in d.samples]
    start = datetime.fromtimestamp(xs[0], r.settings.zone).replace(minute=0, second=0)
    ticks = []
    t = start.timestamp()
    while t <= xs[-1]:
        ticks.append((t, f.clock(t)))
        t += 3600
    spans = [
        svgchart.Ref(p.fired_at, "高峰预案", p.resolved_at if p.resolved_at is not None else xs[-1])
        for p in d.peaks
    ]
    return svgchart.line_chart(
        [
            svgchart.Line("在厅人数", [(s.at, float(s.headcount)) for s in d.samples]),
            svgchart.Line("最长预计等待（分钟）", [(s.at, _min(s.max_wait_s)) for s in d.samples]),
            svgchart.Line("排队人数", [(s.at, float(s.waiting)) for s in d.samples]),
        ],
        title=f"{r.settings.hall_name(d.hall)} {d.day.month}月{d.day.day}日 在厅人数与预计等待",
        y_label="人 / 分钟",
        x_ticks=ticks,
        refs=[svgchart.Ref(float(rule.headcount), "20人 / 20分钟"), *spans],
    )


def _heat(r: Report, hall: str) -> str:
    days = [d for d in r.days if d.hall == hall and d.visits]
    zone = r.settings.zone
    hours = sorted({datetime.fromtimestamp(v.issued_at, zone).hour for d in days for v in d.visits})
    grid: list[list[float | None]] = []
    for d in days:
        sums: dict[int, list[float]] = {}
        for v in d.visits:
            if v.wait_s is not None:
                sums.setdefault(datetime.fromtimestamp(v.issued_at, zone).hour, []).append(v.wait_s)
        grid.append([sum(sums[h]) / len(sums[h]) / 60 if h in sums else None for h in hours])
    return svgchart.heat_map(
        [d.day.strftime("%m-%d") for d in days],
        [f"{h:02d}时" for h in hours],
        grid,
        title=f"{r.settings.hall_name(hall)} 每日各时段平均等待",
        unit="分钟",
    )
