"""Which channels a rule looks at: the ``channels`` parameter of a rule.

Some rules are about consumption and mean nothing on other channels: an export channel (A-,
``1.0.2.8.0.255``) of a household without generation reads zero all the time, and that is
normal. Such a rule carries a ``channels`` parameter in the rule set, written as OBIS codes in
the dotted six-group form, separated by commas, where ``*`` in a group matches any value:

    channels: "1.0.1.*.*.255, 1.0.15.*.*.255"

selects active import (C = 1: the cumulative register ``1.0.1.8.0.255``, its tariff registers
``1.0.1.8.e.255`` and the load-profile delta ``1.0.1.29.0.255``) and the absolute sum
|A+| + |A-| (C = 15). ``*`` on its own selects every channel, whether or not it is named by
an OBIS code. A channel whose name is not an OBIS code is selected only by ``*``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from headend.domain.obis import Obis, ObisError
from headend.vee.block import Bool, Channels

EVERY_CHANNEL = "*"
_GROUPS = 6

Pattern = tuple[int | None, ...]  # one entry per OBIS value group; None matches any value


class ChannelSelectorError(ValueError):
    """A ``channels`` parameter is not a list of OBIS patterns."""


def _group(text: str, whole: str) -> int | None:
    if text == "*":
        return None
    if not text.isdigit() or not 0 <= int(text) <= 255:
        raise ChannelSelectorError(
            f"{whole!r}: each value group is a number 0..255 or *, got {text!r}"
        )
    return int(text)


@dataclass(frozen=True)
class ChannelSelector:
    """A parsed ``channels`` parameter: OBIS patterns, or ``every`` channel."""

    patterns: tuple[Pattern, ...]
    every: bool = False

    @classmethod
    def parse(cls, text: str) -> ChannelSelector:
        items = [item.strip() for item in text.split(",")]
        if not all(items):
            raise ChannelSelectorError(
                f"{text!r}: expected OBIS patterns separated by commas, "
                "such as 1.0.1.*.*.255, or * for every channel"
            )
        if EVERY_CHANNEL in items:
            return cls((), every=True)
        patterns = []
        for item in items:
            groups = item.split(".")
            if len(groups) != _GROUPS:
                raise ChannelSelectorError(
                    f"{item!r}: an OBIS pattern has six value groups, such as 1.0.1.*.*.255"
                )
            patterns.append(tuple(_group(g, item) for g in groups))
        return cls(tuple(patterns))

    def matches(self, channel: str | Obis) -> bool:
        if self.every:
            return True
        if isinstance(channel, str):
            try:
                channel = Obis.parse(channel)
            except ObisError:
                return False
        values = (channel.a, channel.b, channel.c, channel.d, channel.e, channel.f)
        return any(
            all(want is None or want == got for want, got in zip(pattern, values, strict=True))
            for pattern in self.patterns
        )

    def select(self, channels: Channels | None, size: int) -> Bool:
        """Per row (or read), whether its channel is selected; every one when the array form
        does not name its channels."""
        if channels is None or self.every:
            return np.ones(size, dtype=bool)
        named = np.fromiter(
            (self.matches(name) for name in channels.names), dtype=bool, count=len(channels.names)
        )
        return np.asarray(named[channels.code])
