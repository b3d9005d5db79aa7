"""Line charts as inline SVG, drawn on the server: no script, nothing fetched. Pure: no I/O.

Each point carries its exact value as an SVG ``<title>``, which browsers show on hover.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28


@dataclass(frozen=True)
class Chart:
    title: str
    svg: str


def _label(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1_000:.0f}k"
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def axis(low: float, high: float, most: int = 5) -> list[float]:
    """Round values for a vertical axis from ``low`` to ``high`` (low below high): a step of 1, 2 or
    5 times a power of ten, at most ``most`` marks, the first at or below ``low`` and the last at or
    above ``high``."""
    span = high - low
    power = 10 ** math.floor(math.log10(span / (most - 1)))
    step = next(power * m for m in (1, 2, 5, 10) if span / (power * m) <= most - 1)
    first = math.floor(low / step) * step
    marks = [first]
    while marks[-1] < high:
        marks.append(first + len(marks) * step)
    return marks


def money(value: float) -> str:
    return f"${value:,.2f}"


def count(value: float) -> str:
    return f"{value:,.0f}"


def line_chart(
    title: str, labels: list[str], values: list[float | None], shown: Callable[[float], str] = count
) -> Chart:
    """A chart of ``values`` over ``labels``; undefined values (None) break the line; ``shown``
    writes a value for its hover tooltip."""
    known = [value for value in values if value is not None]
    low, high = min([0.0, *known]), max([0.0, *known])
    marks = axis(low, high if high > low else low + 1)
    low, high = marks[0], marks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(values) - 1, 1)

    def x(index: int) -> float:
        return LEFT + index * step

    def y(value: float) -> float:
        return TOP + plot_h * (1 - (value - low) / (high - low))

    segments: list[list[str]] = []
    current: list[str] = []
    for index, value in enumerate(values):
        if value is None:
            if current:
                segments.append(current)
            current = []
            continue
        current.append(f"{x(index):.1f},{y(value):.1f}")
    if current:
        segments.append(current)
    paths = "".join(
        f'<path class="line" d="M{" L".join(points)}"/>' if len(points) > 1 else _dot(points[0]) for points in segments
    )
    grid = "".join(
        f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
        f'<text class="tick" x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{_label(v)}</text>'
        for v in marks
    )
    tips = "".join(
        f'<circle class="hit" cx="{x(index):.1f}" cy="{y(value):.1f}" r="6">'
        f"<title>{escape(labels[index])}: {escape(shown(value))}</title></circle>"
        for index, value in enumerate(values)
        if value is not None
    )
    every = max(1, len(labels) // 6)
    ticks = "".join(
        f'<text class="tick" x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle">{label}</text>'
        for i, label in enumerate(labels)
        if i % every == 0
    )
    opening = f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}">'
    svg = f"{opening}{grid}{ticks}{paths}{tips}</svg>"
    return Chart(title, svg)


def _dot(point: str) -> str:
    cx, cy = point.split(",")
    return f'<circle class="dot" cx="{cx}" cy="{cy}" r="3"/>'
