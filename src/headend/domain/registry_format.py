"""The columns of the meter registry CSV, in order: what `headend meters import` reads and
`headend meters export` and the simulator write. Their meaning is documented in the README."""

from __future__ import annotations

import re

from headend.domain.obis import Obis, ObisError

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
    "gateway_site",
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
# a collector site (``gateway_site``, ``headend worker --site NAME``): it names the worker's
# queues, so it holds no spaces or other characters a queue name would not carry
SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# -- extra_obis: objects read in addition to the device profile's registers -------------------

EXTRA_CLASSES = {1: "data", 3: "register", 4: "extended register"}
DEFAULT_EXTRA_CLASS = 3


def parse_extra_objects(text: str) -> tuple[tuple[int, Obis], ...]:
    """The ``extra_obis`` column: ``;``-separated entries, each an OBIS code (read as a
    register, class 3) or ``CLASS:OBIS`` with CLASS 1 (data), 3 (register) or 4 (extended
    register), e.g. ``1.0.31.7.0.255;1:0.0.96.10.1.255``. A ``ValueError`` names the entry."""
    found: list[tuple[int, Obis]] = []
    for entry in (part.strip() for part in text.split(";")):
        if not entry:
            continue
        class_text, _, code = (
            entry.rpartition(":") if _CLASS_PREFIX.match(entry) else ("", "", entry)
        )
        class_id = DEFAULT_EXTRA_CLASS
        if class_text:
            class_id = int(class_text)
            if class_id not in EXTRA_CLASSES:
                known = ", ".join(f"{c} ({name})" for c, name in EXTRA_CLASSES.items())
                raise ValueError(f"{entry!r}: class {class_id} is not one of {known}")
        try:
            obis = Obis.parse(code)
        except ObisError as exc:
            raise ValueError(f"{entry!r}: {exc}") from exc
        if obis in (o for _, o in found):
            raise ValueError(f"{entry!r}: {obis} is named twice")
        found.append((class_id, obis))
    return tuple(found)


_CLASS_PREFIX = re.compile(r"^\d{1,3}:\d")  # "1:0.0.96..." but not "1-0:1.8.0"
