"""Where a meter is and how to talk to it: what a session needs to open.

``MeterTarget`` is built by the caller (the dispatcher from the registry, the probe from its
options); ``open_transport`` turns it into a ready transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from headend.domain.enums import AuthLevel, SerialFraming, Transport
from headend.protocol import hdlc
from headend.protocol.association import AssociationSettings
from headend.protocol.errors import ConfigurationError
from headend.protocol.hdlc_link import HdlcLink
from headend.protocol.streams import (
    ByteStream,
    CountingStream,
    SerialStream,
    TcpStream,
    Traffic,
)
from headend.protocol.transports import HdlcTransport, StreamOpener, Timeouts, WrapperTransport
from headend.protocol.transports import Transport as TransportProto


@dataclass(frozen=True)
class MeterTarget:
    meter_id: str  # registry id; keys the invocation counter and the definition cache
    transport: Transport = Transport.WRAPPER
    host: str | None = "127.0.0.1"
    port: int | None = 4059
    serial_device: str | None = None  # HDLC over a local serial port instead of TCP
    baud_rate: int = 9600
    framing: SerialFraming = SerialFraming.F8N1
    client_sap: int = 16
    server_logical: int = 1
    server_physical: int | None = 17  # HDLC physical address (None: logical address only)
    auth: AuthLevel = AuthLevel.NONE
    password: str | None = field(default=None, repr=False)
    encryption_key: str | None = field(default=None, repr=False)  # 32 hex digits
    authentication_key: str | None = field(default=None, repr=False)
    client_title: str = "4845414445000001"
    max_pdu: int = 1024
    # bytes an answer may run past the PDU we proposed (a device profile's quirk; 0: strict)
    pdu_tolerance: int = 0
    max_transfer_bytes: int = 4 * 1024 * 1024  # one block transfer at most, however asked
    hdlc_max_info: int = 128
    hdlc_window: int = 1
    timeouts: Timeouts = field(default_factory=Timeouts)
    firmware: str = ""  # with the meter id and model, keys cached scalers and capture objects
    # quirks earlier sessions learned of this model and firmware (``session.LEARNABLE`` names)
    known_quirks: frozenset[str] = frozenset()

    @property
    def max_apdu(self) -> int:
        """The largest answer the meter may send in one APDU."""
        return self.max_pdu + self.pdu_tolerance

    def association_settings(self) -> AssociationSettings:
        def key(name: str, value: str | None) -> bytes | None:
            if value is None:
                return None
            try:
                raw = bytes.fromhex(value)
            except ValueError as exc:
                raise ConfigurationError(f"the {name} is not hexadecimal") from exc
            return raw

        title = key("client system title", self.client_title)
        assert title is not None
        return AssociationSettings(
            auth=AuthLevel(self.auth),
            password=self.password.encode() if self.password is not None else None,
            encryption_key=key("encryption key", self.encryption_key),
            authentication_key=key("authentication key", self.authentication_key),
            client_title=title,
            max_pdu=self.max_pdu,
        )


def _opener(target: MeterTarget) -> StreamOpener:
    if target.serial_device:
        device, baud, framing = target.serial_device, target.baud_rate, target.framing

        async def open_serial() -> ByteStream:
            return await SerialStream.open(device, baud, framing)

        return open_serial
    if not target.host or not target.port:
        raise ConfigurationError("a TCP target needs a host and a port")
    host, port, timeout = target.host, target.port, target.timeouts.connect

    async def open_tcp() -> ByteStream:
        return await TcpStream.connect(host, port, timeout)

    return open_tcp


def build_transport(target: MeterTarget, traffic: Traffic | None = None) -> TransportProto:
    opener = _opener(target)
    if traffic is not None:
        plain, counts = opener, traffic

        async def counted() -> ByteStream:
            return CountingStream(await plain(), counts)

        opener = counted
    if target.serial_device or Transport(target.transport) is Transport.HDLC:
        link = HdlcLink(
            target.client_sap,
            target.server_logical,
            target.server_physical,
            hdlc.LinkParameters(
                max_info_transmit=target.hdlc_max_info,
                max_info_receive=target.hdlc_max_info,
                window_transmit=target.hdlc_window,
                window_receive=target.hdlc_window,
            ),
            max_apdu=target.max_apdu,
        )
        return HdlcTransport(opener, link, target.timeouts)
    return WrapperTransport(
        opener,
        target.client_sap,
        target.server_logical,
        target.timeouts,
        max_apdu=target.max_apdu,
    )
