"""Properties that hold for any series: what is clean stays untouched, estimates never take the
place of good actuals, and VEE run again over its own output changes nothing."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from headend.vee.model import IntervalVersion
from headend.vee.pipeline import run_vee

from .helpers import LATER, series

SUSPECT_RULES = {"V03", "V04", "V09", "V10"}

clean_values = st.lists(
    st.integers(200, 400).map(lambda n: f"{Decimal(n) / 1000:.3f}"), min_size=2, max_size=300
)


@st.composite
def rough_series(draw: st.DrawFn) -> tuple[list[str | None], dict[int, int]]:
    size = draw(st.integers(3, 200))
    values: list[str | None] = [
        draw(st.one_of(st.none(), st.integers(0, 3200).map(lambda n: f"{n / 1000:.3f}")))
        for _ in range(size)
    ]
    values[0] = values[0] or "0.100"
    values[-1] = values[-1] or "0.100"
    status = {i: draw(st.sampled_from([0, 0, 0, 1, 2, 4, 32, 128])) for i in range(size)}
    return values, status


@settings(max_examples=40, deadline=None)
@given(clean_values)
def test_a_clean_series_passes_untouched(values: list[str]) -> None:
    result = run_vee(series(list(values)), now=LATER)
    assert result.findings == ()
    assert [str(v.value) for v in result.versions] == values
    assert all(
        v.quality.value == "VALID" and v.method is None and not v.rules for v in result.versions
    )


@settings(max_examples=40, deadline=None)
@given(rough_series())
def test_an_estimate_never_replaces_a_good_actual(
    data: tuple[list[str | None], dict[int, int]],
) -> None:
    values, status = data
    reads = series(values, status)
    by_end = {r.interval_end: r for r in reads}
    result = run_vee(reads, now=LATER)
    assert len(result.versions) == len(values)
    for version in result.versions:
        read = by_end.get(version.interval_end)
        if version.quality.is_estimate:
            assert read is None or SUSPECT_RULES & set(version.rules), version
        elif read is not None:
            assert version.value == read.value
            assert version.quality.value in ("VALID", "SUSPECT")


@settings(max_examples=30, deadline=None)
@given(rough_series())
def test_running_vee_again_on_its_own_output_changes_nothing(
    data: tuple[list[str | None], dict[int, int]],
) -> None:
    values, status = data
    reads = series(values, status)
    first = run_vee(reads, now=LATER)
    again = run_vee(reads, now=LATER, previous=first.versions)
    assert again.new_versions == ()
    assert all(a.same_content(b) for a, b in zip(first.versions, again.versions, strict=True))


def test_an_actual_that_arrives_later_replaces_the_estimate() -> None:
    gap = ["0.100", "0.120", None, "0.160", "0.180"]
    first = run_vee(series(gap), now=LATER)
    estimated = first.versions[2]
    assert estimated.quality.value == "EST_LINEAR" and estimated.value == Decimal("0.140")
    late = run_vee(
        series(["0.100", "0.120", "0.150", "0.160", "0.180"]), now=LATER, previous=first.versions
    )
    assert [v.interval_end for v in late.new_versions] == [estimated.interval_end]
    actual: IntervalVersion = late.new_versions[0]
    assert actual.quality.value == "VALID" and actual.value == Decimal("0.150")
    assert actual.supersedes == estimated.created_at
