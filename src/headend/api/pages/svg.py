"""Charts drawn on the server as inline SVG: no script, no library, readable without colour.

Each chart is an ``<svg role="img">`` with a title and a description that say in words what
it shows; every bar has a ``<title>`` (its tooltip) with its figures. The pages put the same
figures in a table beside the chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import count

from markupsafe import Markup, escape

_ids = count(1)


def new_id(prefix: str) -> str:
    """An id unique within the process, so two charts on one page never share one."""
    return f"{prefix}-{next(_ids)}"


def fmt(number: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros."""
    text = f"{number:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0):
        if step * power >= value * (1 - 1e-12):
            return step * power
    return 10.0 * power


def text(x: float, y: float, label: str, css: str = "axis", anchor: str = "start") -> str:
    return (
        f'<text x="{fmt(x)}" y="{fmt(y)}" class="{css}" text-anchor="{anchor}">'
        f"{escape(label)}</text>"
    )


def rect(x: float, y: float, w: float, h: float, css: str, title: str = "", fill: str = "") -> str:
    paint = f' fill="{fill}"' if fill else ""
    inner = f"<title>{escape(title)}</title>" if title else ""
    return (
        f'<rect x="{fmt(x)}" y="{fmt(y)}" width="{fmt(max(w, 0.5))}" height="{fmt(max(h, 0))}" '
        f'class="{css}"{paint}>{inner}</rect>'
    )


def line(x1: float, y1: float, x2: float, y2: float, css: str) -> str:
    return f'<line x1="{fmt(x1)}" y1="{fmt(y1)}" x2="{fmt(x2)}" y2="{fmt(y2)}" class="{css}"/>'


def frame(width: int, height: int, title: str, description: str, body: Sequence[str]) -> Markup:
    """The ``<svg>`` element around a chart's parts, labelled for assistive technology."""
    title_id, desc_id = new_id("chart-title"), new_id("chart-desc")
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" preserveAspectRatio="xMinYMin meet" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{title_id}">{escape(title)}</title>'
        f'<desc id="{desc_id}">{escape(description)}</desc>' + "".join(body) + "</svg>"
    )


@dataclass(frozen=True)
class DayRate:
    """One day of the read-success chart; ``attempted`` 0 is a day without reads."""

    day: date
    attempted: int
    succeeded: int

    @property
    def rate(self) -> float | None:
        return self.succeeded / self.attempted if self.attempted else None


def success_chart(days: Sequence[DayRate]) -> Markup:
    """The daily read-success rate as bars from 0 to 100 %, one per day."""
    width, height = 720, 240
    left, right, top, bottom = 46, 10, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / max(len(days), 1)
    body: list[str] = []
    for pct in (0, 25, 50, 75, 100):
        y = top + plot_h * (1 - pct / 100)
        body.append(line(left, y, width - right, y, "grid"))
        body.append(text(left - 6, y + 4, f"{pct} %", anchor="end"))
    read_days = [d for d in days if d.attempted]
    for i, d in enumerate(days):
        x = left + i * slot + slot * 0.15
        if d.rate is None:
            body.append(
                rect(x, top + plot_h - 3, slot * 0.7, 3, "bar-none", f"{d.day}: no reads attempted")
            )
        else:
            h = plot_h * d.rate
            title = f"{d.day}: {d.rate * 100:.1f} % ({d.succeeded} of {d.attempted} meters read)"
            body.append(rect(x, top + plot_h - h, slot * 0.7, h, "bar-ok", title))
        if i % 5 == 0 or i == len(days) - 1:
            body.append(text(x + slot * 0.35, height - 14, f"{d.day:%m-%d}", anchor="middle"))
    body.append(line(left, top + plot_h, width - right, top + plot_h, "baseline"))
    if read_days:
        worst = min(read_days, key=lambda d: d.rate or 0.0)
        description = (
            f"{len(read_days)} of {len(days)} days had reads; the lowest rate was "
            f"{(worst.rate or 0) * 100:.1f} % on {worst.day}."
        )
    else:
        description = "No reads were attempted on these days."
    first, last = (days[0].day, days[-1].day) if days else ("", "")
    return frame(width, height, f"Read-success rate per day, {first} to {last}", description, body)


def ratio(part: int, whole: int) -> Decimal | None:
    return Decimal(part) / Decimal(whole) if whole else None
