"""The ``--faults`` language: how many meters of a fleet get which fault.

    SPEC   := ITEM ("," ITEM)*
    ITEM   := KIND "=" AMOUNT (":" PARAM "=" NUMBER)*
    AMOUNT := an integer count of meters, or a percentage of the fleet such as "5%"

Example: ``no_answer=2,slow=1:delay_s=20,drop=1%:after_requests=3,clock_drift=5%:seconds=600``.
KIND is a ``FaultKind`` value; each meter gets at most one fault. A parameter not given is
left to the part that plays the fault: the link defaults of ``headend.simulator.faults``, or
values the consumption model draws from the meter's seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from headend.simulator.spec import Fault, FaultKind

_WHEN = ("days_ago", "hour")
PARAMETERS: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.NO_ANSWER: (),
    FaultKind.SLOW: ("delay_s",),
    FaultKind.DROP: ("after_requests",),
    FaultKind.BAD_FCS: (),
    FaultKind.REJECT: (),
    FaultKind.WRONG_IC: (),
    FaultKind.CLOCK_DRIFT: ("seconds",),
    FaultKind.OUTAGE: ("hours", *_WHEN),
    FaultKind.SPIKE: ("factor", *_WHEN),
    FaultKind.BACKWARDS: ("wh", *_WHEN),
    FaultKind.ROLLOVER: _WHEN,
    FaultKind.EXCHANGE: _WHEN,
}

HELP = (
    "Faults to inject: comma-separated KIND=COUNT or KIND=PERCENT%, each optionally followed "
    "by :PARAM=VALUE; one fault per meter. Kinds and their parameters: "
    + "; ".join(
        kind.value + (" (" + ", ".join(names) + ")" if names else "")
        for kind, names in PARAMETERS.items()
    )
    + ". Link faults default to slow delay_s=30 and drop after_requests=2; data faults left "
    "unset are drawn from the meter's seed; wrong_ic meters use HLS-GMAC. "
    "Example: no_answer=2,slow=1:delay_s=20,drop=1%,clock_drift=5%:seconds=600."
)


class FaultSpecError(ValueError):
    """A ``--faults`` text that cannot be read; the message names the item."""


@dataclass(frozen=True)
class FaultRequest:
    kind: FaultKind
    count: int | None = None
    percent: float | None = None
    params: dict[str, float] = field(default_factory=dict)

    def meters(self, fleet_size: int) -> int:
        """How many meters of a fleet of ``fleet_size`` get this fault."""
        if self.count is not None:
            return self.count
        assert self.percent is not None
        return min(fleet_size, math.ceil(fleet_size * self.percent / 100.0 - 1e-9))

    def fault(self) -> Fault:
        return Fault(self.kind, dict(self.params))

    def __str__(self) -> str:
        amount = f"{self.count}" if self.count is not None else f"{self.percent:g}%"
        extra = "".join(f":{k}={v:g}" for k, v in self.params.items())
        return f"{self.kind.value}={amount}{extra}"


def parse_faults(text: str | None) -> list[FaultRequest]:
    if not text or not text.strip():
        return []
    requests: list[FaultRequest] = []
    seen: set[FaultKind] = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        head, *settings = item.split(":")
        name, sep, amount = head.partition("=")
        try:
            kind = FaultKind(name.strip().lower())
        except ValueError:
            known = ", ".join(k.value for k in FaultKind)
            raise FaultSpecError(f"{item!r}: unknown fault {name!r}; known: {known}") from None
        if kind in seen:
            raise FaultSpecError(f"{item!r}: fault {kind.value} is given twice")
        seen.add(kind)
        if not sep:
            raise FaultSpecError(f"{item!r}: expected {kind.value}=COUNT or {kind.value}=N%")
        requests.append(
            FaultRequest(kind, *_amount(item, amount.strip()), _params(item, kind, settings))
        )
    return requests


def _amount(item: str, amount: str) -> tuple[int | None, float | None]:
    try:
        if amount.endswith("%"):
            percent = float(amount[:-1])
            if not 0 <= percent <= 100:
                raise ValueError
            return None, percent
        count = int(amount)
        if count < 0:
            raise ValueError
        return count, None
    except ValueError:
        raise FaultSpecError(
            f"{item!r}: {amount!r} is neither a count of meters nor a percentage"
        ) from None


def _params(item: str, kind: FaultKind, settings: list[str]) -> dict[str, float]:
    params: dict[str, float] = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        key = key.strip()
        if not sep or key not in PARAMETERS[kind]:
            allowed = ", ".join(PARAMETERS[kind]) or "none"
            raise FaultSpecError(
                f"{item!r}: {setting!r} is not a parameter of {kind.value} (allowed: {allowed})"
            )
        try:
            params[key] = float(value)
        except ValueError:
            raise FaultSpecError(f"{item!r}: {key} needs a number, got {value!r}") from None
    return params
