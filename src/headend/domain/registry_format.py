"""The columns of the meter registry CSV, in order: what `headend meters import` reads and
`headend meters export` and the simulator write. Their meaning is documented in the README."""

from __future__ import annotations

REGISTRY_COLUMNS: tuple[str, ...] = (
    "meter_id",
    "service_point",
    "customer_ref",
    "gateway",
    "gateway_kind",
    "gateway_host",
    "gateway_port",
    "gateway_device",
    "gateway_baud_rate",
    "gateway_framing",
    "gateway_max_sessions",
    "transport",
    "client_sap",
    "server_logical",
    "server_physical",
    "auth",
    "secret_ref",
    "lls_password",
    "hls_encryption_key",
    "hls_authentication_key",
    "device_profile",
    "ct_ratio",
    "vt_ratio",
    "install_date",
    "removal_date",
    "status",
    "tags",
)
