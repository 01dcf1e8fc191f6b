"""The dashboard's server-drawn charts and its session store, without a server."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from headend.api.pages.interval_chart import interval_chart
from headend.api.pages.svg import DayRate, nice_ceiling, success_chart
from headend.api.sessions import SessionStore
from headend.domain.enums import Role
from headend.domain.quality import Quality
from headend.services.reporting.readings import IntervalRow

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
START = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)  # local midnight


def _row(n: int, quality: Quality, method: str | None = None) -> IntervalRow:
    value = None if quality is Quality.MISSING else Decimal("0.25") + Decimal(n % 4) / 10
    end = START + timedelta(minutes=15 * (n + 1))
    return IntervalRow("1.0.1.8.0.255", end, value, None, quality, [], None, method, 1, "vee")


def test_each_quality_is_drawn_in_its_own_pattern_and_named_in_the_legend() -> None:
    qualities = [
        (Quality.VALID, None),
        (Quality.EST_LINEAR, "E1"),
        (Quality.EST_SCALED_TO_REGISTER, "E2"),
        (Quality.EDITED, "E10"),
        (Quality.SUSPECT, None),
        (Quality.MISSING, None),
    ]
    rows = [_row(n, q, m) for n, (q, m) in enumerate(qualities * 4)]
    chart = interval_chart(rows, START, START + timedelta(days=1), TZ, "1.0.1.8.0.255")
    svg = str(chart.svg)
    assert svg.startswith('<svg class="chart"') and 'role="img"' in svg
    patterns = re.findall(r'<pattern id="([^"]+)"', svg)
    assert len(patterns) == len(set(patterns)) == 5  # every quality but actual is patterned
    for pattern in patterns:
        assert f'fill="url(#{pattern})"' in svg
    labels = [e.label for e in chart.legend]
    assert labels == [
        "Actual (read and valid)",
        "Estimated: linear interpolation (method E1)",
        "Estimated: scaled to the register (method E2)",
        "Edited by an operator",
        "Suspect (failed validation, not estimated)",
        "Missing (no value)",
    ]
    assert [e.count for e in chart.legend] == [4] * 6
    for label in labels:  # each quality also has a labelled lane in the chart itself
        assert f">{label.split(' (method')[0]}</text>" in svg
    assert "2026-11-26 00:30: 0.35 kWh, Estimated: linear interpolation, method E1" in svg
    assert "no value, Missing (no value)" in svg


def test_the_success_chart_has_a_bar_per_day_read_and_says_what_it_shows() -> None:
    days = [DayRate(date(2026, 11, 1) + timedelta(days=i), 0, 0) for i in range(30)]
    days[-1] = DayRate(days[-1].day, 40, 38)
    days[-2] = DayRate(days[-2].day, 40, 40)
    svg = str(success_chart(days))
    assert svg.count('class="bar-ok"') == 2 and svg.count('class="bar-none"') == 28
    assert "2026-11-30: 95.0 % (38 of 40 meters read)" in svg
    assert "Read-success rate per day, 2026-11-01 to 2026-11-30" in svg
    assert "2 of 30 days had reads; the lowest rate was 95.0 % on 2026-11-30." in svg


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0.0, 1.0), (0.07, 0.1), (0.21, 0.25), (3.2, 5.0), (740.0, 1000.0)]
)
def test_axes_end_on_a_round_number(value: float, ceiling: float) -> None:
    assert nice_ceiling(value) == pytest.approx(ceiling)


def test_a_session_lives_until_idle_or_closed_and_is_kept_only_as_a_digest() -> None:
    now = [0.0]
    store = SessionStore(idle_s=60, max_s=600, clock=lambda: now[0])
    token, session = store.open("0123456789ab", "ops", Role.OPERATOR)
    assert store.get(token) is session and store.get(token + "x") is None
    assert token not in repr(store.__dict__)
    now[0] = 59
    assert store.get(token) is session
    now[0] = 118
    assert store.get(token) is session  # each request keeps it alive
    now[0] = 179
    assert store.get(token) is None and len(store) == 0
    again, _ = store.open("0123456789ab", "ops", Role.OPERATOR)
    store.close(again)
    assert store.get(again) is None


def test_a_session_ends_after_its_longest_life_however_busy() -> None:
    now = [0.0]
    store = SessionStore(idle_s=60, max_s=100, clock=lambda: now[0])
    token, session = store.open("0123456789ab", "ops", Role.OPERATOR)
    for now[0] in (50.0, 99.0):
        assert store.get(token) is session
    now[0] = 101.0
    assert store.get(token) is None
    assert session.csrf_ok(session.csrf) and not session.csrf_ok(None)
