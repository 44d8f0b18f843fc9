"""The report as one self-contained HTML page (inline CSS and SVG, no script, nothing fetched)
plus a CSV file for every table, for the centre's archive (plan §5: 存档备查).

`reports.tables` lays the figures out as titled tables and `reports.charts` draws them;
`render(report)` is the page (the same tables, with their charts); `write(report, out_dir)`
writes report.html and the CSVs (UTF-8 with a BOM, so Excel shows the Chinese);
`zip_bytes(report)` packs them for the API.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from html import escape
from pathlib import Path

from hallwatch.daemon.reports import svgchart
from hallwatch.daemon.reports.charts import charts
from hallwatch.daemon.reports.figures import Report
from hallwatch.daemon.reports.incidents import ANSWER_WORKING_DAYS
from hallwatch.daemon.reports.tables import NONE, Cell, Fmt, Table, tables

CSS = """
@page { size: A4; margin: 12mm; }
* { box-sizing: border-box; }
body { font-family: FONT; color: #1a1a1a; margin: 24px auto; max-width: 1100px;
       font-size: 14px; line-height: 1.5; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; border-bottom: 2px solid #0072B2; padding-bottom: 4px; margin-top: 32px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
.meta { color: #555; margin: 0 0 12px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 4px; font-size: 12.5px; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eef3f8; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
thead { display: table-header-group; }
.note { color: #555; font-size: 12px; margin: 2px 0 8px; }
.empty { color: #555; font-style: italic; }
figure { margin: 10px 0; }
svg.chart { width: 100%; max-width: 900px; height: auto; display: block; }
ul.defs { font-size: 12px; color: #444; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  h2 { break-before: page; }
  h2.first { break-before: auto; }
  tr, figure, svg { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
""".replace("FONT", svgchart.FONT)

SECTIONS = (
    ("一、概览", ("01-summary",)),
    ("二、高峰期应急处置", ("02-peak-episodes", "03-emergency-windows")),
    ("三、信息系统故障", ("04-system-outages",)),
    ("四、投诉处理", ("05-complaints", "06-complaints-by-hall", "07-complaints-by-person")),
    ("五、服务情况", ("08-service-by-day", "09-service-by-hour", "10-service-by-service")),
    ("六、设备运行", ("11-device-offline", "12-device-ranking")),
)


def _number(v: Cell) -> bool:
    if isinstance(v, int | float):
        return True
    return isinstance(v, str) and v.replace(".", "", 1).replace("%", "").isdigit()


def _table_html(t: Table, figs: Sequence[str]) -> str:
    parts = [f'<section id="{escape(t.slug)}"><h3>{escape(t.title)}</h3>']
    for svg in figs:
        parts.append(f"<figure>{svg}</figure>")
    if t.rows:
        parts.append("<table><thead><tr>")
        parts += [f"<th>{escape(c)}</th>" for c in t.columns]
        parts.append("</tr></thead><tbody>")
        for row in t.rows:
            cells = "".join(
                f'<td class="n">{escape(_cell(v))}</td>'
                if _number(v)
                else f"<td>{escape(_cell(v))}</td>"
                for v in row
            )
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</tbody></table>")
    else:
        parts.append('<p class="empty">本期无记录。</p>')
    if t.note:
        parts.append(f'<p class="note">注：{escape(t.note)}</p>')
    parts.append(f'<p class="note">数据文件：{escape(t.slug)}.csv</p></section>')
    return "".join(parts)


def _cell(v: Cell) -> str:
    if v is None:
        return NONE
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def render(r: Report) -> str:
    """The whole report as one HTML document."""
    f = Fmt(r)
    by_slug = {t.slug: t for t in tables(r)}
    figs = charts(r)
    halls = "、".join(r.settings.hall_name(h) for h in r.halls) or NONE
    title = f"住房公积金服务大厅运行报告 {r.period.start.isoformat()} 至 {r.period.end.isoformat()}"
    body = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        "<header><h1>住房公积金服务大厅运行报告</h1>",
        f'<p class="meta">统计期间：{r.period.start.isoformat()} 至 {r.period.end.isoformat()}'
        f"（{r.period.days}天）　大厅：{escape(halls)}"
        f"　生成时间：{escape(f.at(r.generated_at))}</p>",
        '<p class="meta">依据《住房公积金服务应急预案》：高峰期应急处置（四·一）、'
        "投诉处理（四·二）、信息系统故障处理（四·三）、考核评比与存档备查（五·一）、"
        "设备更新（五·五）。</p></header>",
    ]
    for i, (heading, slugs) in enumerate(SECTIONS):
        cls = ' class="first"' if i == 0 else ""
        body.append(f"<h2{cls}>{escape(heading)}</h2>")
        for slug in slugs:
            body.append(_table_html(by_slug[slug], figs.get(slug, [])))
    body.append(
        '<h2>说明</h2><ul class="defs">'
        "<li>全部数字由事件库中的原始事件按大厅、按日重放计算（与实时系统同一套处理与告警规则），"
        "同一天在不同报告中的数字一致。</li>"
        "<li>等待时间：取号（或转办）至叫号；办结：窗口完成办理。</li>"
        f"<li>高峰期：在厅{r.settings.rules.default.queue_peak.headcount}人或预计等待"
        f"{r.settings.rules.default.queue_peak.wait_s / 60:.0f}分钟，持续1分钟即启动；"
        "“等待回落用时”自启动起至预计等待稳定回到目标以下。</li>"
        f"<li>投诉答复期限：受理之日起{ANSWER_WORKING_DAYS}个工作日（按国家法定节假日及调休安排）。</li>"
        "<li>设备停机：设备报离线，或超过心跳超时未上报；只计营业时间。</li>"
        "</ul></body></html>"
    )
    return "".join(body)


def csv_text(t: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(t.columns)
    for row in t.rows:
        w.writerow([_cell(v) for v in row])
    return buf.getvalue()


def files(r: Report) -> dict[str, bytes]:
    """File name -> content: report.html and one CSV per table."""
    out = {"report.html": render(r).encode("utf-8")}
    for t in tables(r):
        out[f"{t.slug}.csv"] = csv_text(t).encode("utf-8-sig")
    return out


def write(r: Report, out_dir: str | Path) -> list[Path]:
    """Write report.html and the CSVs into `out_dir` (created); returns the paths."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files(r).items():
        p = d / name
        p.write_bytes(data)
        paths.append(p)
    return paths


def zip_bytes(r: Report) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files(r).items():
            z.writestr(name, data)
    return buf.getvalue()
