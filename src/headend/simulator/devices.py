"""Where the transports get their meters from: COSEM logical devices over the consumption model.

Each meter's device profile (``protocols/<name>.yaml``) says the register resolution its data is
counted in and the HDLC information-field size and window the meter supports. A serving process
reads each profile once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
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
def profile_of(name: str) -> DeviceProfile:
    return load_profile(name)


def meter_data(spec: MeterSpec, timezone: str = DEFAULT_TIMEZONE) -> MeterData:
    """The data a meter serves, as the consumption model computes it (also its truth)."""
    profile = profile_of(spec.profile)
    return MeterData(spec, resolution_wh=profile.register_resolution_wh, tz=ZoneInfo(timezone))


def cosem_devices(
    timezone: str = DEFAULT_TIMEZONE, now: Callable[[], datetime] = _utc_now
) -> DeviceSource:
    """A device source building each meter's logical device from its spec and profile."""
    from headend.simulator.server import LogicalDevice

    def build(spec: MeterSpec) -> Device:
        profile = profile_of(spec.profile)
        device: Device = LogicalDevice(spec, meter_data(spec, timezone), profile, now)
        return device

    return build


def link_parameters(spec: MeterSpec) -> LinkParameters:
    """The HDLC link limits a meter of this profile offers in its UA."""
    quirks = profile_of(spec.profile).quirks
    return LinkParameters(
        max_info_tx=quirks.hdlc_max_info_field,
        max_info_rx=quirks.hdlc_max_info_field,
        window_tx=quirks.hdlc_window,
        window_rx=quirks.hdlc_window,
    )
