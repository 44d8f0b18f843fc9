"""Small charts as inline SVG text: bars, lines and a heat map, for reports that print.

Pure functions from numbers to an `<svg>` string: no dependency, no script, no external font or
image, so a report opens and prints on a machine without internet. Labels are SVG text in a
CJK-capable font stack (whatever the viewer has: Noto/Source Han, WenQuanYi, YaHei, PingFang),
escaped; every chart has a `<title>` for screen readers. Sizes are in user units with a
`viewBox`, so the chart scales to the page width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = (
    "'Noto Sans CJK SC','Source Han Sans SC','WenQuanYi Micro Hei','Microsoft YaHei',"
    "'PingFang SC','Hiragino Sans GB','SimHei',sans-serif"
)
# Colour-blind-safe (Okabe-Ito), and distinct in greyscale print by lightness.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
REF = "#C0392B"  # reference lines: the plan's thresholds


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float | None]


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    points: Sequence[tuple[float, float | None]]  # (x, y); None breaks the line


@dataclass(frozen=True, slots=True)
class Ref:
    """A horizontal reference line (e.g. the plan's 20 minutes) or, with `x1`, a shaded span."""

    value: float
    label: str
    x1: float | None = None


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t < hi + step * 0.999:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:.1f}"


def _text(x: float, y: float, s: str, *, size: int = 12, anchor: str = "middle", **kw: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in kw.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{escape(s)}</text>"
    )


def _open(width: int, height: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" font-family="{FONT}" class="chart">',
        f"<title>{escape(title)}</title>",
        _text(width / 2, 20, title, size=15, font_weight="bold"),
    ]


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    out = []
    cx = x
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{cx:.1f}" y="{y - 9:.1f}" width="12" height="12" fill="{colour}"/>')
        out.append(_text(cx + 17, y + 2, name, anchor="start"))
        cx += 17 + sum(12 if ord(ch) > 0x2E80 else 7 for ch in name) + 20  # CJK is full width
    return out


class _Axes:
    """Plot area with a y scale; x placement is the chart's business."""

    def __init__(self, width: int, height: int, ymax: float, y_label: str) -> None:
        self.left, self.right, self.top, self.bottom = 64, width - 16, 48, height - 52
        self.ticks = nice_ticks(0.0, ymax if ymax > 0 else 1.0)
        self.ymax = self.ticks[-1]
        self.y_label = y_label

    def y(self, v: float) -> float:
        return self.bottom - (self.bottom - self.top) * (v / self.ymax if self.ymax else 0.0)

    def grid(self) -> list[str]:
        out = []
        for t in self.ticks:
            y = self.y(t)
            out.append(
                f'<line x1="{self.left}" x2="{self.right}" y1="{y:.1f}" y2="{y:.1f}" '
                'stroke="#ddd" stroke-width="1"/>'
            )
            out.append(_text(self.left - 6, y + 4, _fmt(t), size=11, anchor="end"))
        mid = (self.top + self.bottom) / 2
        out.append(
            f'<text x="16" y="{mid:.1f}" font-size="12" text-anchor="middle" '
            f'transform="rotate(-90 16 {mid:.1f})">{escape(self.y_label)}</text>'
        )
        out.append(
            f'<line x1="{self.left}" x2="{self.right}" y1="{self.bottom}" y2="{self.bottom}" '
            'stroke="#333" stroke-width="1"/>'
        )
        return out

    def refs(self, refs: Sequence[Ref]) -> list[str]:
        out = []
        for r in refs:
            if r.x1 is not None or r.value > self.ymax:
                continue
            y = self.y(r.value)
            out.append(
                f'<line x1="{self.left}" x2="{self.right}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="{REF}" stroke-width="1.5" stroke-dasharray="6 4"/>'
            )
            out.append(_text(self.right - 4, y - 4, r.label, size=11, anchor="end", fill=REF))
        return out


def bar_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    refs: Sequence[Ref] = (),
    width: int = 760,
    height: int = 300,
) -> str:
    """Grouped vertical bars: one group per category, one bar per series."""
    values = [v for s in series for v in s.values if v is not None]
    ymax = max([*values, *(r.value for r in refs if r.x1 is None)], default=1.0)
    ax = _Axes(width, height, ymax, y_label)
    out = _open(width, height, title)
    out += ax.grid()
    n = max(1, len(categories))
    slot = (ax.right - ax.left) / n
    bar = slot * 0.8 / max(1, len(series))
    for i, cat in enumerate(categories):
        x0 = ax.left + i * slot + slot * 0.1
        for j, s in enumerate(series):
            v = s.values[i] if i < len(s.values) else None
            if v is None:
                continue
            y = ax.y(v)
            out.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{y:.1f}" width="{max(bar - 1, 1):.1f}" '
                f'height="{ax.bottom - y:.1f}" fill="{PALETTE[j % len(PALETTE)]}">'
                f"<title>{escape(f'{cat} {s.name}: {_fmt(v)}')}</title></rect>"
            )
        out.append(_text(x0 + slot * 0.4, ax.bottom + 16, cat, size=11))
    out += ax.refs(refs)
    if len(series) > 1:
        out += _legend([s.name for s in series], ax.left, height - 12)
    out.append("</svg>")
    return "".join(out)


def hbar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    value_labels: Sequence[str] | None = None,
    width: int = 760,
) -> str:
    """Horizontal bars, one per label, longest first as given: a ranking."""
    row = 24
    height = 48 + row * max(1, len(labels)) + 12
    left, right = 200, width - 150
    top = max(values, default=1.0) or 1.0
    out = _open(width, height, title)
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = 40 + i * row
        w = (right - left) * v / top
        tag = value_labels[i] if value_labels is not None else _fmt(v)
        out.append(_text(left - 8, y + 15, label, size=12, anchor="end"))
        out.append(
            f'<rect x="{left}" y="{y + 3:.1f}" width="{max(w, 1):.1f}" height="{row - 8}" '
            f'fill="{PALETTE[0]}"><title>{escape(f"{label}: {tag}")}</title></rect>'
        )
        out.append(_text(left + w + 6, y + 15, tag, size=12, anchor="start"))
    out.append("</svg>")
    return "".join(out)


def line_chart(
    lines: Sequence[Line],
    *,
    title: str,
    y_label: str,
    x_ticks: Sequence[tuple[float, str]],
    refs: Sequence[Ref] = (),
    width: int = 760,
    height: int = 300,
) -> str:
    """Lines over a numeric x (e.g. epoch seconds), with labelled x ticks, reference lines and
    shaded spans (a `Ref` with `x1`: from `value` to `x1`)."""
    xs = [x for ln in lines for x, _ in ln.points] + [x for x, _ in x_ticks]
    ys = [y for ln in lines for _, y in ln.points if y is not None]
    ymax = max([*ys, *(r.value for r in refs if r.x1 is None)], default=1.0)
    ax = _Axes(width, height, ymax, y_label)
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    span = (x_hi - x_lo) or 1.0

    def px(x: float) -> float:
        return ax.left + (ax.right - ax.left) * (x - x_lo) / span

    out = _open(width, height, title)
    for r in refs:
        if r.x1 is not None:
            a, b = px(max(r.value, x_lo)), px(min(r.x1, x_hi))
            out.append(
                f'<rect x="{a:.1f}" y="{ax.top}" width="{max(b - a, 1):.1f}" '
                f'height="{ax.bottom - ax.top}" fill="#F5B7B1" fill-opacity="0.35">'
                f"<title>{escape(r.label)}</title></rect>"
            )
            out.append(_text(a + 3, ax.top + 12, r.label, size=11, anchor="start", fill=REF))
    out += ax.grid()
    for x, label in x_ticks:
        out.append(_text(px(x), ax.bottom + 16, label, size=11))
    for i, ln in enumerate(lines):
        colour = PALETTE[i % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for x, y in ln.points:
            if y is None:
                runs.append([])
            else:
                runs[-1].append(f"{px(x):.1f},{ax.y(y):.1f}")
        for run in runs:
            if len(run) > 1:
                out.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" '
                    f'points="{" ".join(run)}"/>'
                )
    out += ax.refs(refs)
    out += _legend([ln.name for ln in lines], ax.left, height - 12)
    out.append("</svg>")
    return "".join(out)


def heat_map(
    rows: Sequence[str],
    cols: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    title: str,
    unit: str,
    width: int = 760,
) -> str:
    """A grid of cells shaded by value (white to dark blue), the value written in each cell."""
    cell_h = 26
    left, top = 110, 44
    height = top + cell_h * max(1, len(rows)) + 58
    cell_w = (width - left - 16) / max(1, len(cols))
    flat = [v for r in values for v in r if v is not None]
    hi = max(flat, default=1.0) or 1.0
    out = _open(width, height, title)
    for j, c in enumerate(cols):
        out.append(_text(left + (j + 0.5) * cell_w, top + 12, c, size=11))
    for i, name in enumerate(rows):
        y = top + 18 + i * cell_h
        out.append(_text(left - 8, y + cell_h / 2 + 4, name, size=12, anchor="end"))
        for j, v in enumerate(values[i]):
            x = left + j * cell_w
            if v is None:
                out.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell_w - 1:.1f}" '
                    f'height="{cell_h - 1}" fill="#f4f4f4"/>'
                )
                continue
            share = v / hi
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell_w - 1:.1f}" height="{cell_h - 1}" '
                f'fill="{_blue(share)}"><title>{escape(f"{name} {cols[j]}: {_fmt(v)}{unit}")}'
                "</title></rect>"
            )
            colour = "#fff" if share > 0.55 else "#222"
            out.append(_text(x + cell_w / 2, y + cell_h / 2 + 4, _fmt(v), size=11, fill=colour))
    y = top + 18 + len(rows) * cell_h + 22
    for k in range(6):
        share = k / 5
        out.append(
            f'<rect x="{left + k * 40}" y="{y}" width="40" height="12" fill="{_blue(share)}"/>'
        )
        out.append(_text(left + k * 40 + 20, y + 26, _fmt(hi * share), size=10))
    out.append(_text(left + 250, y + 10, unit, size=11, anchor="start"))
    out.append("</svg>")
    return "".join(out)


def _blue(share: float) -> str:
    """White (0) to the palette's blue (1), linear in RGB."""
    share = min(1.0, max(0.0, share))
    lo, hi = (255, 255, 255), (0, 0x4C, 0x8C)
    r, g, b = (round(a + (z - a) * share) for a, z in zip(lo, hi, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"
