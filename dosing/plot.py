"""The concentration-time plot as server-rendered SVG (works without JavaScript; prints as vector).

Drawn: the credible band and the individual (MAP) curve, the population (typical) curve, the target band,
the measured levels, dose marks, and a line at "now". Text is escaped; every number is formatted here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

WIDTH, HEIGHT = 720, 340
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 16, 44
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class PlotLabels:
    """Translated labels (the caller translates; this module only draws)."""

    individual: str
    band: str
    population: str
    levels: str
    target: str
    now: str
    y_axis: str


def _path(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))


def concentration_svg(
    *,
    curves: dict[str, list[float | None]],
    levels: Sequence[tuple[float, float]],
    doses_h: Sequence[float],
    target_band: tuple[float, float] | None,
    now_h: float | None,
    origin: datetime,
    labels: PlotLabels,
) -> str:
    """The plot of one course as an ``<svg>`` element (hours from ``origin`` on the x axis, as clock days)."""
    times = [float(t) for t in curves["times_h"] if t is not None]
    if not times:
        return ""
    x0, x1 = times[0], max(times[-1], times[0] + 1.0)
    values = [
        v for key in ("individual", "upper", "population") for v in curves.get(key, []) if v is not None
    ]
    values += [c for _, c in levels]
    if target_band:
        values.append(target_band[1])
    y1 = max([5.0, *values]) * 1.1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(t: float) -> float:
        return LEFT + (t - x0) / (x1 - x0) * plot_w

    def sy(c: float) -> float:
        return TOP + plot_h - min(max(c, 0.0), y1) / y1 * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'class="conc-plot" '
        f'aria-label="{escape(labels.y_axis)}" data-testid="plot">'
    ]
    # grid and axes
    step = 5.0 if y1 <= 40 else 10.0 if y1 <= 90 else 20.0
    c = 0.0
    while c <= y1:
        y = sy(c)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{c:g}</text>')
        c += step
    local0 = origin.astimezone(SHANGHAI)
    day0 = local0.replace(hour=0, minute=0, second=0, microsecond=0)
    tick = day0
    hours_step = 12 if x1 - x0 <= 96 else 24
    while (tick - origin).total_seconds() / 3600 <= x1:
        h = (tick - origin).total_seconds() / 3600
        if h >= x0:
            x = sx(h)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + plot_h}" class="grid"/>')
            label = tick.strftime("%m-%d %H:%M")
            out.append(
                f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" class="tick">{label}</text>'
            )
        tick += timedelta(hours=hours_step)
    out.append(
        f'<text x="14" y="{TOP + plot_h / 2:.1f}" transform="rotate(-90 14 {TOP + plot_h / 2:.1f})" '
        f'text-anchor="middle" class="axis">{escape(labels.y_axis)}</text>'
    )
    if target_band:
        lo, hi = target_band
        out.append(
            f'<rect x="{LEFT}" y="{sy(hi):.1f}" width="{plot_w}" height="{sy(lo) - sy(hi):.1f}" '
            'class="target">'
            f"<title>{escape(labels.target)}</title></rect>"
        )
    lower, upper = curves.get("lower") or [], curves.get("upper") or []
    band = [(sx(t), sy(u)) for t, u in zip(times, upper, strict=False) if u is not None]
    band += [(sx(t), sy(lo)) for t, lo in reversed(list(zip(times, lower, strict=False))) if lo is not None]
    if band:
        out.append(f'<path d="{_path(band)} Z" class="band"><title>{escape(labels.band)}</title></path>')
    population = [
        (sx(t), sy(v)) for t, v in zip(times, curves.get("population") or [], strict=False) if v is not None
    ]
    if population:
        out.append(
            f'<path d="{_path(population)}" class="population">'
            f"<title>{escape(labels.population)}</title></path>"
        )
    individual = [
        (sx(t), sy(v)) for t, v in zip(times, curves.get("individual") or [], strict=False) if v is not None
    ]
    out.append(
        f'<path d="{_path(individual)}" class="individual"><title>{escape(labels.individual)}</title></path>'
    )
    for t in doses_h:
        if x0 <= t <= x1:
            out.append(f'<path d="M{sx(t):.1f},{TOP + plot_h} l-4,8 h8 Z" class="dose"/>')
    for planned in curves.get("planned_doses_h") or []:
        if planned is not None and x0 <= planned <= x1:
            out.append(f'<path d="M{sx(planned):.1f},{TOP + plot_h} l-4,8 h8 Z" class="dose planned"/>')
    if now_h is not None and x0 <= now_h <= x1:
        x = sx(now_h)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + plot_h}" class="now"/>')
        out.append(f'<text x="{x + 3:.1f}" y="{TOP + 12}" class="tick">{escape(labels.now)}</text>')
    for t, conc in levels:
        out.append(
            f'<circle cx="{sx(t):.1f}" cy="{sy(conc):.1f}" r="5" class="level" data-testid="plot-level">'
            f"<title>{escape(labels.levels)}: {conc:g} mg/L</title></circle>"
        )
    # legend
    items = [("individual", labels.individual), ("population", labels.population), ("band", labels.band)]
    if target_band:
        items.append(("target", labels.target))
    x = LEFT
    y = HEIGHT - 8
    for cls, text in items:
        out.append(f'<rect x="{x}" y="{y - 9}" width="14" height="8" class="legend-{cls}"/>')
        out.append(f'<text x="{x + 18}" y="{y}" class="tick">{escape(text)}</text>')
        x += 30 + 7 * len(text) if text.isascii() else 30 + 13 * len(text)
    out.append(f'<circle cx="{x + 4}" cy="{y - 4}" r="4" class="level"/>')
    out.append(f'<text x="{x + 12}" y="{y}" class="tick">{escape(labels.levels)}</text>')
    out.append("</svg>")
    return "".join(out)
