"""Link-level behaviour of one meter: pacing and the faults a link shows.

``LinkPolicy`` is read from a ``MeterSpec`` once; the transports ask it whether to answer,
when, and what to do to the bytes. Association faults (REJECT, WRONG_IC) live in the server
core and data faults in the consumption model; both are ignored here.

- NO_ANSWER: the connection or frame is accepted and never answered.
- SLOW: every answer leaves ``delay_s`` seconds late (default 30).
- DROP: request number ``after_requests + 1`` (default 2) of a session is not answered and
  the connection is closed; on a serial line, where nothing can be closed, the meter falls
  silent until the client sets the link up again (SNRM).
- BAD_FCS: HDLC answers carry a wrong frame check sequence; over the TCP wrapper, whose
  frames have none, the APDU bytes are garbled instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from headend.simulator.spec import FaultKind, MeterSpec

DEFAULT_SLOW_DELAY_S = 30.0
DEFAULT_DROP_AFTER = 2
BITS_PER_CHARACTER = 10  # start bit, 8 data bits (or 7 and parity), stop bit


class DropLink(Exception):
    """Raised by a meter's application side when its link must be dropped now."""


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    silent: bool = False
    latency_s: float = 0.0
    slow_s: float = 0.0
    drop_after: int | None = None
    corrupt: bool = False
    baud_rate: int | None = None

    @classmethod
    def for_meter(cls, spec: MeterSpec) -> LinkPolicy:
        slow = spec.fault(FaultKind.SLOW)
        drop = spec.fault(FaultKind.DROP)
        return cls(
            silent=spec.fault(FaultKind.NO_ANSWER) is not None,
            latency_s=max(0.0, spec.latency_s),
            slow_s=slow.params.get("delay_s", DEFAULT_SLOW_DELAY_S) if slow else 0.0,
            drop_after=(
                int(drop.params.get("after_requests", DEFAULT_DROP_AFTER)) if drop else None
            ),
            corrupt=spec.fault(FaultKind.BAD_FCS) is not None,
            baud_rate=spec.baud_rate if spec.baud_rate and spec.baud_rate > 0 else None,
        )

    @property
    def paced(self) -> bool:
        return bool(self.latency_s or self.slow_s or self.baud_rate)

    def answer_delay(self, size: int) -> float:
        """Seconds between a request's arrival and its answer of ``size`` bytes leaving."""
        delay = self.latency_s + self.slow_s
        if self.baud_rate:
            delay += size * BITS_PER_CHARACTER / self.baud_rate
        return delay


def corrupt_check_sequence(frame: bytes) -> bytes:
    """The same HDLC frame with both bytes of its FCS inverted (length and flags kept)."""
    return frame[:-3] + bytes((frame[-3] ^ 0xFF, frame[-2] ^ 0xFF)) + frame[-1:]


def corrupt_apdu(apdu: bytes) -> bytes:
    """An APDU garbled on the line: every bit inverted, so no tag a client knows remains."""
    return bytes(byte ^ 0xFF for byte in apdu)
