"""Sentences for findings: what fired, on what, against which threshold."""

from __future__ import annotations

from collections.abc import Mapping

from headend.vee.model import ParamValue


def kwh(value: float) -> str:
    """A figure in kWh, to the Wh, without trailing zeros beyond three places."""
    return f"{value:.3f}"


def describe(
    rule: str,
    kind: str,
    metrics: Mapping[str, float],
    intervals: int,
    params: Mapping[str, ParamValue],
) -> str:
    m = metrics
    n = f"{intervals} interval{'s' if intervals != 1 else ''}"
    texts: dict[tuple[str, str], str] = {
        ("V01", "missing"): f"{n} missing",
        ("V01", "billing_gate"): (
            f"{m.get('missing_pct', 0.0):.1f}% of the intervals are missing, above the billing "
            f"gate of {params.get('billing_gate_pct')}%"
        ),
        ("V03", "clock_invalid"): f"clock-invalid status bit on {n}",
        ("V03", "clock_adjusted"): f"clock-adjusted status bit on {n}; value kept",
        ("V03", "drift"): (
            f"meter clock off by {m.get('deviation_s', 0.0):+.0f} s, more than "
            f"{params.get('max_drift_s')} s"
        ),
        ("V04", "data_not_valid"): f"data-not-valid or critical-error status bit on {n}",
        ("V04", "power_down"): f"power-down status bit on {n} (informational)",
        ("V05", "sum_check"): (
            f"intervals add up to {kwh(m.get('intervals_kwh', 0.0))} kWh but the register "
            f"advanced {kwh(m.get('register_kwh', 0.0))} kWh"
        ),
        ("V06", "backwards"): (
            f"register went back from {kwh(m.get('previous_kwh', 0.0))} to "
            f"{kwh(m.get('current_kwh', 0.0))} kWh"
        ),
        ("V07", "rollover"): (
            f"register rolled over from {kwh(m.get('previous_kwh', 0.0))} to "
            f"{kwh(m.get('current_kwh', 0.0))} kWh; advance taken as "
            f"{kwh(m.get('advance_kwh', 0.0))} kWh"
        ),
        ("V08", "daily_usage"): (
            f"day used {kwh(m.get('total_kwh', 0.0))} kWh against an average of "
            f"{kwh(m.get('adu_kwh', 0.0))} kWh/day over the previous days"
        ),
        ("V08", "register_usage"): (
            f"register advanced {kwh(m.get('daily_kwh', 0.0))} kWh/day against an average of "
            f"{kwh(m.get('adu_kwh', 0.0))} kWh/day over the periods before"
        ),
        ("V09", "limit"): f"{n} above the service's physical limit or negative",
        ("V09", "estimate_rejected"): (
            f"register-distributed estimate for {n} above the physical limit or negative; "
            "estimated again without the register where another method applies"
        ),
        ("V10", "spike"): (
            f"{n} above {params.get('factor')} × the median of the neighbouring intervals"
        ),
        ("V11", "zero_run"): f"{int(m.get('intervals', intervals))} consecutive zero intervals "
        "with no power-down bit; field check needed, not estimated",
        ("V12", "zero_consumption"): (
            f"register stayed at {kwh(m.get('index_kwh', 0.0))} kWh over the period on an "
            "active meter"
        ),
        ("V14", "tou_sum"): (
            f"{int(m.get('tariffs', 0.0))} tariff registers add up to "
            f"{kwh(m.get('tariff_sum_kwh', 0.0))} kWh; the total register reads "
            f"{kwh(m.get('total_kwh', 0.0))} kWh"
        ),
    }
    return texts.get((rule, kind), f"{rule} {kind}")
