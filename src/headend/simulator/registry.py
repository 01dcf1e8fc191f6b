"""The registry CSV of a fleet: what ``headend meters import`` reads, one row per meter.

Gateways are named after where their meters are reached: ``sim-tcp-PORT`` for a meter (or a
concentrator of logical devices) on a wrapper port and for a lone HDLC meter on a port,
``sim-bus-PORT`` for a TCP-to-RS485 converter fronting several, and ``sim-serial-NAME`` for a
serial line. Secrets are written in clear (the importer encrypts them); ``secret_ref`` is left
empty for the importer to name.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from headend.domain.enums import AuthLevel, GatewayKind, MeterStatus, SerialFraming, Transport
from headend.domain.registry_format import REGISTRY_COLUMNS
from headend.simulator.spec import MeterSpec

COLUMNS = REGISTRY_COLUMNS
DEFAULT_SERIAL_BAUD = 9600


def registry_rows(
    specs: Sequence[MeterSpec], timezone: str = "Asia/Ho_Chi_Minh"
) -> list[dict[str, str]]:
    zone = ZoneInfo(timezone)
    sharing = Counter(_place(spec) for spec in specs)
    return [_row(spec, sharing[_place(spec)], zone) for spec in specs]


def _place(spec: MeterSpec) -> tuple[str, str, int]:
    return (spec.transport.value, spec.serial_device or spec.host, spec.port)


def _row(spec: MeterSpec, sharing: int, zone: ZoneInfo) -> dict[str, str]:
    wrapper = spec.transport is Transport.WRAPPER
    hls = spec.auth is AuthLevel.HLS_GMAC
    row = dict.fromkeys(COLUMNS, "")
    if spec.serial_device:
        name = Path(spec.serial_device).name
        row.update(
            gateway=f"sim-serial-{name}",
            gateway_kind=GatewayKind.SERIAL.value,
            gateway_device=spec.serial_device,
            gateway_baud_rate=str(spec.baud_rate or DEFAULT_SERIAL_BAUD),
            gateway_framing=SerialFraming.F8N1.value,
            gateway_max_sessions="1",
        )
    else:
        bus = not wrapper and sharing > 1
        row.update(
            gateway=f"sim-{'bus' if bus else 'tcp'}-{spec.port}",
            gateway_kind=(GatewayKind.TCP_SERIAL if bus else GatewayKind.TCP).value,
            gateway_host=spec.host,
            gateway_port=str(spec.port),
            gateway_max_sessions=str(sharing if wrapper else 1),
        )
    installed = spec.epoch.astimezone(zone).date() if spec.epoch else date.today()
    tags = ["simulated", "serial" if spec.serial_device else spec.transport.value]
    tags += [f"fault:{fault.kind.value}" for fault in spec.faults]
    row.update(
        meter_id=spec.meter_id,
        service_point=f"SP-{spec.meter_id}",
        customer_ref=f"CUST-{spec.meter_id}",
        transport=spec.transport.value,
        client_sap=str(spec.client_sap),
        server_logical=str(spec.server_logical),
        server_physical="" if wrapper else str(spec.server_physical),
        auth=spec.auth.value,
        lls_password=(spec.password or "") if spec.auth is AuthLevel.LLS else "",
        hls_encryption_key=(spec.encryption_key or "") if hls else "",
        hls_authentication_key=(spec.authentication_key or "") if hls else "",
        device_profile=spec.profile,
        ct_ratio="1",
        vt_ratio="1",
        install_date=installed.isoformat(),
        status=MeterStatus.ACTIVE.value,
        tags=";".join(tags),
    )
    return row


def registry_csv(specs: Sequence[MeterSpec], timezone: str = "Asia/Ho_Chi_Minh") -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(registry_rows(specs, timezone))
    return out.getvalue()


def write_registry(
    path: Path | str, specs: Sequence[MeterSpec], timezone: str = "Asia/Ho_Chi_Minh"
) -> None:
    Path(path).write_text(registry_csv(specs, timezone), encoding="utf-8")
