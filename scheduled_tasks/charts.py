"""Small charts as SVG markup, drawn on the server: the pages need no chart library and work
offline.

Pure functions: labelled series in, a string of SVG out. Every piece of text (titles, labels,
series names) is escaped here, so the markup may be inserted into a page as it is. Each chart
is an image with an accessible name and description (``role="img"``, ``<title>``, ``<desc>``),
and every bar and point carries its own ``<title>`` (a tooltip, read by screen readers). Colours
come from CSS classes (``chart-series-0``, ``chart-series-1``, ...), not from the markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 720
HEIGHT = 240
# Room for the value axis on the left and the day labels below.
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 26
# At most this many labels under the x axis (every n-th one is shown).
X_LABELS = 8


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label; None where there is nothing to show."""

    name: str
    values: Sequence[float | None]


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (1 for 0 or less):
    the top of a value axis."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def format_number(value: float) -> str:
    """An axis or tooltip number: integers without decimals, others with up to two."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _e(text: str) -> str:
    return escape(str(text), quote=True)


def _check(labels: Sequence[str], series: Sequence[Series]) -> None:
    for one in series:
        if len(one.values) != len(labels):
            raise ValueError(
                f"series {one.name!r} has {len(one.values)} values for {len(labels)} labels"
            )


def _frame(
    chart_id: str, title: str, description: str, top: float, unit: str, body: list[str]
) -> str:
    plot_bottom = HEIGHT - BOTTOM
    axis = [
        f'<line class="chart-axis" x1="{LEFT}" y1="{plot_bottom}" x2="{WIDTH - RIGHT}" '
        f'y2="{plot_bottom}"/>',
        f'<line class="chart-grid" x1="{LEFT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}"/>',
        f'<text class="chart-tick" x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">'
        f"{_e(format_number(top) + unit)}</text>",
        f'<text class="chart-tick" x="{LEFT - 6}" y="{plot_bottom + 4}" text-anchor="end">'
        f"{_e('0' + unit)}</text>",
    ]
    cid = _e(chart_id)
    return (
        f'<svg class="chart" id="{cid}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{cid}-title {cid}-desc" preserveAspectRatio="xMidYMid meet">'
        f'<title id="{cid}-title">{_e(title)}</title>'
        f'<desc id="{cid}-desc">{_e(description)}</desc>' + "".join(axis) + "".join(body) + "</svg>"
    )


def _x_labels(labels: Sequence[str], centre_of: list[float]) -> list[str]:
    step = max(1, math.ceil(len(labels) / X_LABELS))
    shown = [i for i in range(len(labels)) if i % step == 0 or i == len(labels) - 1]
    if len(shown) > 1 and shown[-1] - shown[-2] < step:
        shown.pop(-2)  # the last label would crowd its neighbour
    return [
        f'<text class="chart-label" x="{centre_of[i]:.1f}" y="{HEIGHT - 8}" '
        f'text-anchor="{_anchor(centre_of[i])}">{_e(labels[i])}</text>'
        for i in shown
    ]


def _anchor(x: float) -> str:
    """A label on the plot's very edge (a line chart's first and last point) is written
    inward from it, or half of it would fall outside the picture."""
    if x >= WIDTH - RIGHT - 1:
        return "end"
    if x <= LEFT + 1:
        return "start"
    return "middle"


def stacked_bars(
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
) -> str:
    """One bar per label, the series stacked bottom-up in their order (None counts as 0)."""
    _check(labels, series)
    totals = [sum(one.values[i] or 0 for one in series) for i in range(len(labels))]
    top = nice_ceiling(max(totals, default=0))
    plot_height = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    bar = max(slot * 0.7, 1.0)
    centres = [LEFT + slot * (i + 0.5) for i in range(len(labels))]
    body: list[str] = []
    for i, label in enumerate(labels):
        base = float(HEIGHT - BOTTOM)
        for n, one in enumerate(series):
            value = one.values[i] or 0
            if value <= 0:
                continue
            height = value / top * plot_height
            base -= height
            body.append(
                f'<rect class="chart-series-{n}" x="{centres[i] - bar / 2:.1f}" y="{base:.1f}" '
                f'width="{bar:.1f}" height="{height:.1f}">'
                f"<title>{_e(f'{label}: {format_number(value)}{unit} {one.name}')}</title></rect>"
            )
    body.extend(_x_labels(labels, centres))
    return _frame(chart_id, title, description, top, unit, body)


def lines(
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
) -> str:
    """One line per series across the labels, broken where a value is None; every value is
    also a dot with its own tooltip."""
    _check(labels, series)
    present = [v for one in series for v in one.values if v is not None]
    top = nice_ceiling(max(present, default=0))
    plot_height = HEIGHT - TOP - BOTTOM
    span = WIDTH - LEFT - RIGHT
    xs = [
        LEFT + (span * i / (len(labels) - 1) if len(labels) > 1 else span / 2)
        for i in range(len(labels))
    ]

    def y(value: float) -> float:
        return HEIGHT - BOTTOM - value / top * plot_height

    body: list[str] = []
    for n, one in enumerate(series):
        group = [f'<g class="chart-series-{n}"><title>{_e(one.name)}</title>']
        run: list[str] = []
        for i, value in enumerate([*one.values, None]):
            if value is not None:
                run.append(f"{xs[i]:.1f},{y(value):.1f}")
                continue
            if len(run) > 1:
                group.append(f'<polyline class="chart-line" points="{" ".join(run)}"/>')
            run = []
        for i, value in enumerate(one.values):
            if value is None:
                continue
            tip = f"{one.name}, {labels[i]}: {format_number(value)}{unit}"
            group.append(
                f'<circle class="chart-dot" cx="{xs[i]:.1f}" cy="{y(value):.1f}" r="3">'
                f"<title>{_e(tip)}</title></circle>"
            )
        group.append("</g>")
        body.append("".join(group))
    body.extend(_x_labels(labels, xs))
    return _frame(chart_id, title, description, top, unit, body)
