"""Where a meter's data faults sit in its history, from ``MeterSpec.faults`` and the seed.

A data fault is placed ``days_ago`` local days before the meter's reference day (the day its
nominal history ends: ``epoch + history_days``, or the day the model was built when there is no
epoch), at ``hour`` (local, default seeded). Parameters a fault does not give are drawn from
the meter's seed, so the same fleet file places every fault at the same instant.
"""

from __future__ import annotations

from dataclasses import dataclass

from headend.simulator.load_model import LoadModel, scalar_uniform
from headend.simulator.spec import Fault, FaultKind, MeterSpec


@dataclass(frozen=True)
class Outage:
    down: int  # UTC seconds, on an interval boundary
    up: int  # UTC seconds


@dataclass(frozen=True)
class Spike:
    start: int  # UTC seconds at which the spiking interval starts
    factor: float


@dataclass(frozen=True)
class Backwards:
    at: int  # registers read at or after this boundary are lowered
    units: int  # by this much, in resolution units


@dataclass(frozen=True)
class Rollover:
    at: int  # the boundary at which the A+ register passes its maximum


@dataclass(frozen=True)
class Exchange:
    at: int  # boundary at which the new meter starts
    serial: str


@dataclass(frozen=True)
class DataFaults:
    drift_s: float = 0.0
    outage: Outage | None = None
    spike: Spike | None = None
    backwards: Backwards | None = None
    rollover: Rollover | None = None
    exchange: Exchange | None = None


def place_faults(spec: MeterSpec, model: LoadModel, reference_day: int) -> DataFaults:
    """Turn the spec's data faults into instants and sizes."""

    def draw(stream: int) -> float:
        return scalar_uniform(model.seed, 5_000 + stream)

    period = model.period_s
    late = max(2, spec.history_days // 2)

    def when(fault: Fault, stream: int, default_days: float, hours: tuple[float, float]) -> int:
        days_ago = int(fault.params.get("days_ago", default_days))
        hour = fault.params.get("hour", hours[0] + (hours[1] - hours[0]) * draw(stream))
        slot = int(hour * 3600) // period
        return model.slot_start(reference_day - days_ago, slot)

    def seeded_days(stream: int) -> int:
        return 1 + int(draw(stream) * late)

    drift = spec.fault(FaultKind.CLOCK_DRIFT)
    drift_s = 0.0
    if drift is not None:
        size = 60 + int(840 * draw(1))
        drift_s = drift.params.get("seconds", size if draw(2) < 0.5 else -size)

    outage = None
    if (fault := spec.fault(FaultKind.OUTAGE)) is not None:
        down = when(fault, 3, 1, (0.0, 24.0))
        hours = fault.params.get("hours", float(2 + int(7 * draw(4))))
        outage = Outage(down, down + int(hours * 3600))

    spike = None
    if (fault := spec.fault(FaultKind.SPIKE)) is not None:
        spike = Spike(when(fault, 5, seeded_days(6), (8.0, 21.0)), fault.params.get("factor", 20.0))

    backwards = None
    if (fault := spec.fault(FaultKind.BACKWARDS)) is not None:
        wh = fault.params.get("wh", 1_000 + 19_000 * draw(7))
        units = max(1, round(wh / model.resolution_wh))
        backwards = Backwards(when(fault, 8, seeded_days(9), (0.0, 24.0)), units)

    rollover = None
    if (fault := spec.fault(FaultKind.ROLLOVER)) is not None:
        rollover = Rollover(when(fault, 10, seeded_days(11), (0.0, 24.0)))

    exchange = None
    if (fault := spec.fault(FaultKind.EXCHANGE)) is not None:
        at = when(fault, 12, seeded_days(13), (7.0, 17.0))
        exchange = Exchange(at, replacement_serial(spec.meter_id, draw(14)))

    return DataFaults(drift_s, outage, spike, backwards, rollover, exchange)


def replacement_serial(serial: str, u: float) -> str:
    """A different serial of the same form: digits stay digits, the length stays."""
    if serial.isdigit():
        width = len(serial)
        modulus = 10**width
        step = 1 + int(u * (modulus - 1))
        candidate = (int(serial) + step) % modulus
        if candidate == int(serial):
            candidate = (candidate + 1) % modulus
        return str(candidate).zfill(width)
    return f"{serial}-R{1 + int(u * 9)}"
