"""A meter channel's intervals as bars, with each interval's quality shown three ways: a
colour, a fill pattern, and a labelled lane under the bars that marks where each quality
occurs (so nothing depends on telling colours apart, nor on seeing a pattern in a thin bar).

Qualities are grouped as an operator reads them: actual (read and valid), estimated (one
group per estimation method), edited, suspect, missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from markupsafe import Markup

from headend.api.pages.svg import frame, line, new_id, nice_ceiling, rect, text
from headend.domain.quality import Quality
from headend.services.reporting.readings import IntervalRow


@dataclass(frozen=True)
class QualityClass:
    key: str  # pattern id suffix and CSS class suffix
    label: str
    shape: str  # how its pattern is drawn; "" for a solid fill


ACTUAL = QualityClass("actual", "Actual (read and valid)", "")
EDITED = QualityClass("edited", "Edited by an operator", "horizontal")
SUSPECT = QualityClass("suspect", "Suspect (failed validation, not estimated)", "grid")
MISSING = QualityClass("missing", "Missing (no value)", "dots-sparse")
ESTIMATED = {
    Quality.EST_LINEAR: QualityClass("est-linear", "Estimated: linear interpolation", "up"),
    Quality.EST_LIKEDAY: QualityClass("est-likeday", "Estimated: like day", "down"),
    Quality.EST_AVG_LIKEDAY: QualityClass(
        "est-avg-likeday", "Estimated: average of like days", "cross"
    ),
    Quality.EST_SCALED_TO_REGISTER: QualityClass(
        "est-scaled", "Estimated: scaled to the register", "vertical"
    ),
    Quality.EST_PREV_YEAR: QualityClass("est-prev-year", "Estimated: previous year", "dots"),
    Quality.EST_PROFILE: QualityClass("est-profile", "Estimated: load profile", "checks"),
    Quality.EST_ZERO: QualityClass("est-zero", "Estimated: zero", "up-sparse"),
    Quality.FORWARD_EST: QualityClass("est-forward", "Estimated ahead (forward)", "up-thick"),
}
ORDER = [ACTUAL, *ESTIMATED.values(), EDITED, SUSPECT, MISSING]


def quality_class(row: IntervalRow) -> QualityClass:
    if row.value is None or row.quality is Quality.MISSING:
        return MISSING
    if row.quality is Quality.SUSPECT:
        return SUSPECT
    if row.quality is Quality.EDITED:
        return EDITED
    return ESTIMATED.get(row.quality, ACTUAL)


_SHAPES = {  # pattern tile content: (tile size, rotation, marks drawn in the tile)
    "up": (6, 45, '<line x1="0" y1="0" x2="0" y2="6" class="pfg"/>'),
    "down": (6, -45, '<line x1="0" y1="0" x2="0" y2="6" class="pfg"/>'),
    "cross": (
        6,
        45,
        '<line x1="0" y1="0" x2="0" y2="6" class="pfg"/>'
        '<line x1="0" y1="0" x2="6" y2="0" class="pfg"/>',
    ),
    "vertical": (5, 0, '<line x1="1" y1="0" x2="1" y2="5" class="pfg"/>'),
    "horizontal": (5, 0, '<line x1="0" y1="1" x2="5" y2="1" class="pfg"/>'),
    "grid": (
        6,
        0,
        '<line x1="1" y1="0" x2="1" y2="6" class="pfg"/>'
        '<line x1="0" y1="1" x2="6" y2="1" class="pfg"/>',
    ),
    "dots": (5, 0, '<circle cx="2.5" cy="2.5" r="1.2" class="pdot"/>'),
    "dots-sparse": (8, 0, '<circle cx="4" cy="4" r="1.2" class="pdot"/>'),
    "checks": (6, 0, '<rect x="0" y="0" width="3" height="3" class="pdot"/>'),
    "up-sparse": (10, 45, '<line x1="0" y1="0" x2="0" y2="10" class="pfg"/>'),
    "up-thick": (8, 45, '<line x1="0" y1="0" x2="0" y2="8" class="pfg-thick"/>'),
}


def _pattern(pattern_id: str, cls: QualityClass) -> str:
    size, angle, marks = _SHAPES[cls.shape]
    turn = f' patternTransform="rotate({angle})"' if angle else ""
    return (
        f'<pattern id="{pattern_id}" width="{size}" height="{size}" '
        f'patternUnits="userSpaceOnUse"{turn} class="q-{cls.key}">'
        f'<rect width="{size}" height="{size}" class="pbg"/>{marks}</pattern>'
    )


@dataclass(frozen=True)
class LegendEntry:
    label: str
    count: int
    swatch: Markup


@dataclass(frozen=True)
class IntervalChart:
    svg: Markup
    legend: list[LegendEntry]


def _period(rows: Sequence[IntervalRow]) -> timedelta:
    steps = [b.interval_end - a.interval_end for a, b in pairwise(rows)]
    positive = [s for s in steps if s > timedelta(0)]
    return min(positive) if positive else timedelta(minutes=15)


def _ticks(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[datetime, str]]:
    """Local midnights, and every 6 hours when the range is short."""
    step = timedelta(hours=6) if end - start <= timedelta(days=3) else timedelta(days=1)
    local = start.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    ticks: list[tuple[datetime, str]] = []
    while local <= end:
        if local >= start:
            label = f"{local:%m-%d}" if local.hour == 0 else f"{local:%H:%M}"
            ticks.append((local, label))
        local = local + step  # wall-clock arithmetic: ticks stay on local hours
    return ticks


def interval_chart(
    rows: Sequence[IntervalRow], start: datetime, end: datetime, tz: ZoneInfo, channel: str
) -> IntervalChart:
    """Bars of kWh per interval over ``[start, end]``, then one lane per quality present."""
    classes = [quality_class(r) for r in rows]
    present = [c for c in ORDER if c in classes]
    prefix = new_id("q")
    width, left, right, top, plot_h, lane_h = 960, 58, 12, 26, 200, 26
    plot_w = width - left - right
    height = top + plot_h + 26 + lane_h * len(present) + 6
    span = (end - start).total_seconds() or 1.0
    period = _period(rows)
    highest = max((float(r.value) for r in rows if r.value is not None), default=0.0)
    step = nice_ceiling(highest / 4)
    steps = max(math.ceil(highest / step - 1e-9), 1)
    peak = step * steps

    def x_of(moment: datetime) -> float:
        return left + plot_w * (moment - start).total_seconds() / span

    body = ["<defs>"]
    body += [_pattern(f"{prefix}-{c.key}", c) for c in present if c.shape]
    body.append("</defs>")
    for i in range(steps + 1):
        y = top + plot_h * (1 - i / steps)
        body.append(line(left, y, width - right, y, "grid"))
        body.append(text(left - 6, y + 4, f"{round(step * i, 9):g}", anchor="end"))
    body.append(text(4, 12, "kWh per interval", "axis-unit"))
    for moment, label in _ticks(start, end, tz):
        x = x_of(moment)
        body.append(line(x, top, x, top + plot_h, "tick"))
        anchor = "end" if x > width - right - 20 else "start" if x < left + 20 else "middle"
        body.append(text(x, top + plot_h + 16, label, anchor=anchor))
    for row, cls in zip(rows, classes, strict=True):
        x0, x1 = x_of(row.interval_end - period), x_of(row.interval_end)
        bar_w = max((x1 - x0) * 0.85, 0.6)
        fill = f"url(#{prefix}-{cls.key})" if cls.shape else ""
        at = row.interval_end.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        method = f", method {row.method}" if row.method else ""
        if row.value is None:
            h, title = plot_h * 0.08, f"{at}: no value, {cls.label}"
        else:
            h = plot_h * float(row.value) / peak
            title = f"{at}: {row.value} kWh, {cls.label}{method}, version {row.version}"
        body.append(rect(x0, top + plot_h - h, bar_w, h, f"bar q-{cls.key}", title, fill))
    body.append(line(left, top + plot_h, width - right, top + plot_h, "baseline"))
    lane_top = top + plot_h + 26
    for n, cls in enumerate(present):
        y = lane_top + n * lane_h
        body.append(text(left, y + 9, cls.label, "lane-label"))
        fill = f"url(#{prefix}-{cls.key})" if cls.shape else ""
        for run_start, run_end in _runs(rows, classes, cls, period):
            x0, x1 = x_of(run_start), x_of(run_end)
            body.append(rect(x0, y + 12, x1 - x0, 10, f"lane q-{cls.key}", "", fill))
    counts = {c: classes.count(c) for c in present}
    summary = ", ".join(f"{counts[c]} {c.label.lower()}" for c in present) or "no intervals"
    first = start.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    last = end.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    svg = frame(
        width,
        height,
        f"Intervals of channel {channel}, {first} to {last}",
        f"{len(rows)} intervals: {summary}. Peak {peak:g} kWh per interval on the axis.",
        body,
    )
    methods: dict[QualityClass, set[str]] = {c: set() for c in present}
    for row, cls in zip(rows, classes, strict=True):
        if row.method and cls.key.startswith("est"):
            methods[cls].add(row.method)
    legend = [
        LegendEntry(
            c.label + (f" (method {', '.join(sorted(methods[c]))})" if methods[c] else ""),
            counts[c],
            _swatch(prefix, c),
        )
        for c in present
    ]
    return IntervalChart(svg, legend)


def _runs(
    rows: Sequence[IntervalRow],
    classes: Sequence[QualityClass],
    wanted: QualityClass,
    period: timedelta,
) -> list[tuple[datetime, datetime]]:
    """Stretches of consecutive intervals of one quality class, as (start, end) instants."""
    runs: list[tuple[datetime, datetime]] = []
    for row, cls in zip(rows, classes, strict=True):
        if cls is not wanted:
            continue
        begin = row.interval_end - period
        if runs and runs[-1][1] >= begin:
            runs[-1] = (runs[-1][0], row.interval_end)
        else:
            runs.append((begin, row.interval_end))
    return runs


def _swatch(prefix: str, cls: QualityClass) -> Markup:
    fill = f' fill="url(#{prefix}-{cls.key})"' if cls.shape else ""
    return Markup(
        '<svg class="swatch" viewBox="0 0 24 14" aria-hidden="true" focusable="false">'
        f'<rect x="0.5" y="0.5" width="23" height="13" class="bar q-{cls.key}"{fill}/></svg>'
    )
