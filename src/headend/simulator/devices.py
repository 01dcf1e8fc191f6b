"""Where the transports get their meters from: COSEM logical devices over the consumption model.

Each meter's device profile (``protocols/<name>.yaml``) says the register resolution its data is
counted in and the HDLC information-field size and window the meter supports. A serving process
reads each profile once, from the shipped ``protocols/`` folder or the folder it is given (a
model of its own, in tests).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from headend.profiles import DeviceProfile, load_profile
from headend.simulator.consumption import MeterData
from headend.simulator.hdlc import LinkParameters
from headend.simulator.meter import Device, DeviceSource
from headend.simulator.spec import MeterSpec

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=64)
def profile_of(name: str, folder: Path | None = None) -> DeviceProfile:
    return load_profile(name, folder)


def meter_data(
    spec: MeterSpec, timezone: str = DEFAULT_TIMEZONE, profiles: Path | None = None
) -> MeterData:
    """The data a meter serves, as the consumption model computes it (also its truth)."""
    profile = profile_of(spec.profile, profiles)
    return MeterData(spec, resolution_wh=profile.register_resolution_wh, tz=ZoneInfo(timezone))


def cosem_devices(
    timezone: str = DEFAULT_TIMEZONE,
    now: Callable[[], datetime] = _utc_now,
    profiles: Path | None = None,
) -> DeviceSource:
    """A device source building each meter's logical device from its spec and profile (from
    the folder ``profiles``, else the shipped one)."""
    from headend.simulator.server import LogicalDevice

    def build(spec: MeterSpec) -> Device:
        profile = profile_of(spec.profile, profiles)
        device: Device = LogicalDevice(spec, meter_data(spec, timezone, profiles), profile, now)
        return device

    return build


def link_parameters(spec: MeterSpec, profiles: Path | None = None) -> LinkParameters:
    """The HDLC link limits a meter of this profile offers in its UA."""
    quirks = profile_of(spec.profile, profiles).quirks
    return LinkParameters(
        max_info_tx=quirks.hdlc_max_info_field,
        max_info_rx=quirks.hdlc_max_info_field,
        window_tx=quirks.hdlc_window,
        window_rx=quirks.hdlc_window,
    )
