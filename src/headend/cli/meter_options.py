"""The options that say how to reach one meter (``probe``, ``profiles discover``, ``profiles
check --host``), as ``Annotated`` aliases, and the ``MeterTarget`` they make."""

from __future__ import annotations

from typing import Annotated

import typer

from headend.domain.enums import AuthLevel, SerialFraming, Transport
from headend.protocol.target import MeterTarget
from headend.protocol.transports import Timeouts

Port = Annotated[int, typer.Option("--port", help="TCP port.")]
TransportOpt = Annotated[Transport, typer.Option("--transport", help="wrapper or hdlc.")]
PhysicalAddress = Annotated[int, typer.Option("--physical-address", help="HDLC physical address.")]
ClientAddress = Annotated[int, typer.Option("--client-address", help="Client SAP.")]
ServerAddress = Annotated[int, typer.Option("--server-address", help="Logical device.")]
Auth = Annotated[AuthLevel, typer.Option("--auth", help="none, lls or hls_gmac.")]
Password = Annotated[str | None, typer.Option("--password", help="LLS password.")]
EncryptionKey = Annotated[str | None, typer.Option("--encryption-key", help="HLS key, hex.")]
AuthenticationKey = Annotated[
    str | None, typer.Option("--authentication-key", help="HLS key, hex.")
]
InvocationCounter = Annotated[
    int,
    typer.Option(
        "--invocation-counter",
        help="HLS: first invocation counter to use (above the meter's last seen one).",
    ),
]
SystemTitle = Annotated[str, typer.Option("--system-title", help="Ours, 16 hex.")]
MaxPdu = Annotated[int, typer.Option("--max-pdu", help="PDU size we propose.")]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds per step.")]


def meter_target(
    *,
    host: str,
    port: int,
    transport: Transport,
    physical_address: int | None,
    client_address: int,
    server_address: int,
    auth: AuthLevel,
    password: str | None,
    encryption_key: str | None,
    authentication_key: str | None,
    system_title: str,
    max_pdu: int,
    timeout: float,
    budget: float = 600.0,
    serial_device: str | None = None,
    baud_rate: int = 9600,
    framing: SerialFraming = SerialFraming.F8N1,
) -> MeterTarget:
    """The target the options name (HDLC over ``serial_device`` when one is given); a bad
    option is a ``ValueError`` or a ``ConfigurationError`` when the session opens."""
    return MeterTarget(
        meter_id=f"{serial_device or host}:{port}/{server_address}/{physical_address}",
        transport=transport,
        host=host,
        port=port,
        serial_device=serial_device,
        baud_rate=baud_rate,
        framing=framing,
        client_sap=client_address,
        server_logical=server_address,
        server_physical=physical_address,
        auth=auth,
        password=password,
        encryption_key=encryption_key,
        authentication_key=authentication_key,
        client_title=system_title,
        max_pdu=max_pdu,
        timeouts=Timeouts(
            connect=timeout,
            link=timeout,
            response=timeout,
            close=min(timeout, 3.0),
            session=budget,
        ),
    )
