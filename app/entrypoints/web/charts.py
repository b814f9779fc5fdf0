"""The forecast chart as inline SVG, drawn on the server: no JavaScript charting library, no CDN, and the page
shows the chart even with scripts off. Daily revenue, power cost and profit over the forecast's days."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40  # margins for the axis labels
SERIES = (  # key, label, CSS class (colours live in the page's stylesheet)
    ("revenue_usd", "Revenue", "s-revenue"),
    ("cost_usd", "Power cost", "s-cost"),
    ("profit_usd", "Profit", "s-profit"),
)


def nice_step(span: float, ticks: int = 5) -> float:
    """A 1/2/5 x 10^n step that cuts `span` into about `ticks` intervals."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def _fmt_usd(value: float, places: int = 2) -> str:
    return f"{'-' if value < 0 else ''}${abs(value):,.{places}f}"


def forecast_svg(days: Sequence[dict[str, Any]]) -> Markup:
    """SVG markup for the Forecast document's `days` (already rounded; day is YYYY-MM-DD)."""
    if not days:
        return Markup('<p class="muted">No forecast days to draw.</p>')
    values = [float(d[key]) for d in days for key, _, _ in SERIES]
    low, high = min(0.0, min(values)), max(0.0, max(values))
    step = nice_step(high - low or 1.0)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    if high == low:
        high = low + step
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = len(days)

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h * (high - v) / (high - low)

    parts: list[str] = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Daily revenue, power cost and profit over {n} days">'
    ]
    # Horizontal grid and y labels.
    ticks = round((high - low) / step)
    for k in range(ticks + 1):
        v = low + k * step
        yy = y(v)
        cls = "axis-zero" if abs(v) < step / 1e6 else "grid"
        parts.append(f'<line class="{cls}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}"/>')
        label = _fmt_usd(v, 0 if step >= 1 else 2)  # whole dollars unless the scale is finer than that
        parts.append(f'<text class="tick" x="{LEFT - 8}" y="{yy + 4:.1f}" text-anchor="end">{label}</text>')
    # x labels: about six dates, always the first and the last.
    every = max(1, math.ceil(n / 6))
    labelled = list(range(0, n, every))
    if n - 1 - labelled[-1] >= every / 2:  # the last day too, unless it would crowd the previous label
        labelled.append(n - 1)
    for i in labelled:
        anchor = "end" if i == n - 1 and n > 1 else "middle"  # the last date ends at the plot's edge, unclipped
        parts.append(
            f'<text class="tick" x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="{anchor}">'
            f'{escape(str(days[i]["day"])[5:])}</text>'
        )
    # One polyline per series, with a dot per day carrying a tooltip.
    for key, label, cls in SERIES:
        points = " ".join(f"{x(i):.1f},{y(float(d[key])):.1f}" for i, d in enumerate(days))
        parts.append(f'<polyline class="line {cls}" points="{points}"><title>{label}</title></polyline>')
        for i, d in enumerate(days):
            parts.append(
                f'<circle class="dot {cls}" cx="{x(i):.1f}" cy="{y(float(d[key])):.1f}" r="2.5">'
                f'<title>{escape(str(d["day"]))} {label}: {_fmt_usd(float(d[key]))}</title></circle>'
            )
    # Legend.
    lx = LEFT
    for _, label, cls in SERIES:
        parts.append(f'<rect class="{cls}" x="{lx}" y="{HEIGHT - 14}" width="12" height="4"/>')
        parts.append(f'<text class="legend" x="{lx + 16}" y="{HEIGHT - 9}">{label}</text>')
        lx += 24 + 8 * len(label)
    parts.append("</svg>")
    return Markup("".join(parts))


STATUSES = ("active", "idle", "maintenance", "offline", "retired")


def status_bar_svg(by_status: dict[str, int]) -> Markup:
    """One stacked bar of the fleet by status (SVG geometry, not inline styles: the page's CSP forbids those)."""
    total = sum(by_status.get(s, 0) for s in STATUSES)
    if total == 0:
        return Markup('<svg class="statusbar" viewBox="0 0 100 4" preserveAspectRatio="none" role="img" '
                      'aria-label="No miners"><rect x="0" y="0" width="100" height="4" fill="#e5e7eb"/></svg>')
    parts = ['<svg class="statusbar" viewBox="0 0 100 4" preserveAspectRatio="none" role="img" '
             'aria-label="Miners by status">']
    x = 0.0
    for s in STATUSES:
        n = by_status.get(s, 0)
        if n:
            w = 100 * n / total
            parts.append(f'<rect class="st-{s}" x="{x:.3f}" y="0" width="{w:.3f}" height="4">'
                         f'<title>{s}: {n}</title></rect>')
            x += w
    parts.append("</svg>")
    return Markup("".join(parts))
