"""The client side of an HDLC link (IEC 62056-46), sans I/O.

``HdlcLink`` holds the connection state, the negotiated parameters and the sequence numbers.
It turns an APDU into the frames to send (segmented by the negotiated information-field size,
grouped by the negotiated window) and takes received frames back, telling the caller whether
to wait, to acknowledge with RR, or that the response is complete. The caller does the I/O.

A meter is untrusted: the answer it reassembles from segments is capped at ``max_apdu``
bytes (the PDU we proposed plus any tolerance the device profile grants), and a UA that
negotiates an information field too small to carry anything is a failed link setup.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from headend.protocol import hdlc
from headend.protocol.errors import (
    ClientStateError,
    LinkSetupError,
    MalformedFrameError,
    SessionDroppedError,
)

# The smallest information field a link may negotiate (IEC 62056-46 allows 32 and up; a
# UA stating less, down to 0, leaves nothing to carry an APDU in).
MIN_INFO_FIELD = 16


class LinkState(StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    AWAITING_RESPONSE = "awaiting_response"
    DISCONNECTING = "disconnecting"


class LinkEvent(StrEnum):
    SNRM = "snrm"
    UA = "ua"
    REFUSED = "refused"
    REQUEST = "request"
    RESPONSE = "response"
    DISC = "disc"


TRANSITIONS: dict[LinkState, dict[LinkEvent, LinkState]] = {
    LinkState.DISCONNECTED: {LinkEvent.SNRM: LinkState.CONNECTING},
    LinkState.CONNECTING: {
        LinkEvent.UA: LinkState.CONNECTED,
        LinkEvent.REFUSED: LinkState.DISCONNECTED,
    },
    LinkState.CONNECTED: {
        LinkEvent.REQUEST: LinkState.AWAITING_RESPONSE,
        LinkEvent.DISC: LinkState.DISCONNECTING,
    },
    LinkState.AWAITING_RESPONSE: {
        LinkEvent.RESPONSE: LinkState.CONNECTED,
        LinkEvent.DISC: LinkState.DISCONNECTING,
    },
    LinkState.DISCONNECTING: {
        LinkEvent.UA: LinkState.DISCONNECTED,
        LinkEvent.REFUSED: LinkState.DISCONNECTED,
    },
}


@dataclass(frozen=True, slots=True)
class Received:
    """What a received frame means for the caller."""

    complete: bytes | None = None  # the whole APDU, LLC removed
    reply: bytes | None = None  # a frame to send now (RR)
    window_acknowledged: bool = False  # the server acknowledged our window of segments


class HdlcLink:
    def __init__(
        self,
        client_sap: int,
        server_logical: int,
        server_physical: int | None,
        proposed: hdlc.LinkParameters | None = None,
        *,
        max_apdu: int = 0xFFFF,
    ) -> None:
        self.client = hdlc.client_address(client_sap)
        self.server = hdlc.server_address(server_logical, server_physical)
        self.proposed = proposed or hdlc.LinkParameters()
        self.negotiated = hdlc.LinkParameters()
        self.state = LinkState.DISCONNECTED
        self._send_seq = 0  # N(S) of our next I-frame
        self._recv_seq = 0  # N(S) we expect next from the server
        self._assembly = bytearray()
        # the reassembled answer: the APDU and its LLC header, never more
        self.max_assembly = max_apdu + len(hdlc.LLC_RESPONSE)

    def _advance(self, event: LinkEvent) -> None:
        try:
            self.state = TRANSITIONS[self.state][event]
        except KeyError:
            raise ClientStateError(f"HDLC link cannot take {event} in state {self.state}") from None

    # --- link setup and release --------------------------------------------------------------
    def snrm(self) -> bytes:
        self._advance(LinkEvent.SNRM)
        info = self.proposed.to_bytes()
        return hdlc.Frame(self.server, self.client, hdlc.SNRM, info).to_bytes()

    def on_connect_answer(self, frame: hdlc.Frame) -> None:
        if frame.kind == hdlc.UA:
            server = hdlc.LinkParameters.from_bytes(frame.information)
            if min(server.max_info_receive, server.max_info_transmit) < MIN_INFO_FIELD:
                self._advance(LinkEvent.REFUSED)
                raise LinkSetupError(
                    "the meter's UA negotiates an information field of "
                    f"{min(server.max_info_receive, server.max_info_transmit)} bytes"
                )
            # the server states its own transmit/receive; ours are the mirror, never above
            # what we proposed
            self.negotiated = hdlc.LinkParameters(
                max_info_transmit=min(self.proposed.max_info_transmit, server.max_info_receive),
                max_info_receive=min(self.proposed.max_info_receive, server.max_info_transmit),
                window_transmit=max(1, min(self.proposed.window_transmit, server.window_receive)),
                window_receive=max(1, min(self.proposed.window_receive, server.window_transmit)),
            )
            self._send_seq = self._recv_seq = 0
            self._advance(LinkEvent.UA)
            return
        self._advance(LinkEvent.REFUSED)
        if frame.kind == hdlc.DM:
            raise LinkSetupError("the meter answered SNRM with DM (disconnected mode)")
        raise LinkSetupError(f"unexpected answer 0x{frame.control:02x} to SNRM")

    def disc(self) -> bytes:
        self._advance(LinkEvent.DISC)
        return hdlc.Frame(self.server, self.client, hdlc.DISC).to_bytes()

    def on_disconnect_answer(self, frame: hdlc.Frame) -> None:
        self._advance(LinkEvent.UA if frame.kind == hdlc.UA else LinkEvent.REFUSED)

    # --- data -------------------------------------------------------------------------------
    def request_windows(self, apdu: bytes) -> list[list[bytes]]:
        """The frames carrying ``apdu``, grouped by window; after every window but the
        last the server acknowledges with RR before we go on."""
        self._advance(LinkEvent.REQUEST)
        payload = hdlc.LLC_REQUEST + apdu
        size = self.negotiated.max_info_transmit
        chunks = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
        window = self.negotiated.window_transmit
        windows: list[list[bytes]] = []
        current: list[bytes] = []
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            end_of_window = last or len(current) + 1 == window
            frame = hdlc.information_frame(
                self.server,
                self.client,
                chunk,
                send_sequence=self._send_seq,
                receive_sequence=self._recv_seq,
                final=end_of_window,
                segmented=not last,
            )
            self._send_seq = (self._send_seq + 1) % 8
            current.append(frame.to_bytes())
            if end_of_window:
                windows.append(current)
                current = []
        self._assembly.clear()
        return windows

    def is_for_us(self, frame: hdlc.Frame) -> bool:
        return frame.destination == self.client and frame.source == self.server

    def on_frame(self, frame: hdlc.Frame) -> Received:
        """Take one frame of the server's answer."""
        if frame.kind == hdlc.DM or frame.kind == hdlc.FRMR or frame.kind == hdlc.DISC:
            raise SessionDroppedError(
                f"the meter left the HDLC link (control 0x{frame.control:02x})"
            )
        if frame.is_rr:
            # acknowledgement of a window of our segmented request
            return Received(window_acknowledged=True)
        if not frame.is_information:
            raise MalformedFrameError(f"unexpected HDLC frame 0x{frame.control:02x}")
        if frame.send_sequence != self._recv_seq:
            raise MalformedFrameError(
                f"HDLC frame out of sequence: N(S)={frame.send_sequence}, expected {self._recv_seq}"
            )
        self._recv_seq = (self._recv_seq + 1) % 8
        if len(self._assembly) + len(frame.information) > self.max_assembly:
            self._assembly.clear()
            raise MalformedFrameError(
                f"HDLC answer runs past {self.max_assembly - len(hdlc.LLC_RESPONSE)} bytes, "
                "more than the PDU we proposed"
            )
        self._assembly += frame.information
        if frame.segmented:
            if frame.poll_final:
                rr = hdlc.receive_ready(self.server, self.client, self._recv_seq)
                return Received(reply=rr.to_bytes())
            return Received()
        data = bytes(self._assembly)
        self._assembly.clear()
        self._advance(LinkEvent.RESPONSE)
        if not data.startswith(hdlc.LLC_RESPONSE):
            raise MalformedFrameError("HDLC response does not start with the LLC header")
        return Received(complete=data[len(hdlc.LLC_RESPONSE) :])
