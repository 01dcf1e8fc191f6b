"""The secondary station of an HDLC link: one meter's side of SNRM/UA, I-frames, RR and DISC.

Sans-IO: ``receive(frame)`` takes a decoded request frame and returns the frames to send
back. Complete APDUs go up to an ``ApduHandler``; its answer goes down again, cut into
segments of the negotiated information field size and sent a window at a time, the next
window on the client's RR.

The link has two states; a frame not listed for a state is answered as a meter does:
DM when disconnected, ignored when connected.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from headend.simulator.hdlc import (
    LLC_REQUEST,
    LLC_RESPONSE,
    Control,
    Frame,
    Kind,
    LinkParameters,
    ServerAddress,
)


class ApduHandler(Protocol):
    """What sits above the link: the meter's application layer."""

    def request(self, apdu: bytes) -> bytes | None: ...

    def reset(self) -> None: ...


class LinkState(Enum):
    DISCONNECTED = "disconnected"  # normal disconnected mode (NDM)
    CONNECTED = "connected"  # normal response mode (NRM)


TRANSITIONS: dict[LinkState, dict[Kind, LinkState]] = {
    LinkState.DISCONNECTED: {
        Kind.SNRM: LinkState.CONNECTED,
    },
    LinkState.CONNECTED: {
        Kind.SNRM: LinkState.CONNECTED,
        Kind.DISC: LinkState.DISCONNECTED,
        Kind.I: LinkState.CONNECTED,
        Kind.RR: LinkState.CONNECTED,
        Kind.RNR: LinkState.CONNECTED,
    },
}


@dataclass(slots=True)
class _Sent:
    ns: int
    info: bytes
    segmented: bool


class HdlcStation:
    def __init__(self, own: LinkParameters, upper: ApduHandler) -> None:
        self.own = own
        self.upper = upper
        self.state = LinkState.DISCONNECTED
        self.params = LinkParameters()
        self._vs = 0
        self._vr = 0
        self._incoming = bytearray()
        self._pending: deque[bytes] = deque()
        self._unacked: list[_Sent] = []
        self._last_answer: list[Frame] = []

    def receive(self, frame: Frame) -> list[Frame]:
        kind = frame.control.kind
        next_state = TRANSITIONS[self.state].get(kind)
        if next_state is None:
            if self.state is LinkState.DISCONNECTED and frame.control.poll_final:
                return [self._unnumbered(frame, Kind.DM)]
            return []
        handler = {
            Kind.SNRM: self._on_snrm,
            Kind.DISC: self._on_disc,
            Kind.I: self._on_information,
            Kind.RR: self._on_receive_ready,
            Kind.RNR: self._on_receive_not_ready,
        }[kind]
        answer = handler(frame)
        self.state = next_state
        return answer

    # -- unnumbered ----------------------------------------------------------------------

    def _on_snrm(self, frame: Frame) -> list[Frame]:
        self._reset_link()
        self.upper.reset()
        self.params = self.own.agree(LinkParameters.from_info(frame.info))
        return [self._unnumbered(frame, Kind.UA, self.params.to_info())]

    def _on_disc(self, frame: Frame) -> list[Frame]:
        self._reset_link()
        self.upper.reset()
        return [self._unnumbered(frame, Kind.UA)]

    def _reset_link(self) -> None:
        self._vs = self._vr = 0
        self._incoming.clear()
        self._pending.clear()
        self._unacked.clear()
        self._last_answer = []

    # -- information transfer ----------------------------------------------------------

    def _on_information(self, frame: Frame) -> list[Frame]:
        control = frame.control
        if control.ns != self._vr:
            if (control.ns + 1) % 8 == self._vr and self._last_answer:
                return list(self._last_answer)  # the client missed our answer: repeat it
            return [self._supervisory(frame, Kind.RR)] if control.poll_final else []
        self._vr = (self._vr + 1) % 8
        self._acknowledged(control.nr)
        self._incoming += frame.info
        if frame.segmented:
            return [self._supervisory(frame, Kind.RR)] if control.poll_final else []
        data = bytes(self._incoming)
        self._incoming.clear()
        apdu = data[len(LLC_REQUEST) :] if data.startswith(LLC_REQUEST) else data
        answer = self.upper.request(apdu)
        if answer is None:
            self._last_answer = [self._supervisory(frame, Kind.RR)]
            return list(self._last_answer)
        data = LLC_RESPONSE + answer
        size = self.params.max_info_tx
        self._pending = deque(data[i : i + size] for i in range(0, len(data), size))
        self._unacked = []
        self._last_answer = self._next_window(frame)
        return list(self._last_answer)

    def _on_receive_ready(self, frame: Frame) -> list[Frame]:
        self._acknowledged(frame.control.nr)
        if self._unacked:
            return self._resend(frame)
        if self._pending:
            self._last_answer = self._next_window(frame)
            return list(self._last_answer)
        return [self._supervisory(frame, Kind.RR)] if frame.control.poll_final else []

    def _on_receive_not_ready(self, frame: Frame) -> list[Frame]:
        self._acknowledged(frame.control.nr)
        return [self._supervisory(frame, Kind.RR)] if frame.control.poll_final else []

    def _acknowledged(self, nr: int) -> None:
        """Forget the frames the client has acknowledged (those before ``nr``)."""
        while self._unacked and self._unacked[0].ns != nr:
            self._unacked.pop(0)

    def _next_window(self, request: Frame) -> list[Frame]:
        out: list[Frame] = []
        for position in range(self.params.window_tx):
            if not self._pending:
                break
            info = self._pending.popleft()
            more = bool(self._pending)
            sent = _Sent(self._vs, info, more)
            self._unacked.append(sent)
            final = not more or position == self.params.window_tx - 1
            out.append(self._information(request, sent, final))
            self._vs = (self._vs + 1) % 8
        return out

    def _resend(self, request: Frame) -> list[Frame]:
        last = len(self._unacked) - 1
        return [
            self._information(request, sent, index == last)
            for index, sent in enumerate(self._unacked)
        ]

    # -- frame building ----------------------------------------------------------------

    def _information(self, request: Frame, sent: _Sent, final: bool) -> Frame:
        control = Control(Kind.I, final, sent.ns, self._vr)
        return Frame(self._address(request), request.client, control, sent.info, sent.segmented)

    def _supervisory(self, request: Frame, kind: Kind) -> Frame:
        return Frame(self._address(request), request.client, Control(kind, True, 0, self._vr))

    def _unnumbered(self, request: Frame, kind: Kind, info: bytes = b"") -> Frame:
        return Frame(self._address(request), request.client, Control(kind, True), info)

    @staticmethod
    def _address(request: Frame) -> ServerAddress:
        return request.server
