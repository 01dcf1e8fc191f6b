"""Device profiles: what each meter model holds and how to read it (``protocols/*.yaml``)."""

from __future__ import annotations

from headend.profiles.loader import ProfileError, load_all, load_profile, profiles_dir
from headend.profiles.model import (
    CaptureObjectSpec,
    DeviationSemantics,
    DeviceProfile,
    ObjectSpec,
    ProfileSpec,
    Quantity,
    Quirks,
    ValueType,
)

__all__ = [
    "CaptureObjectSpec",
    "DeviationSemantics",
    "DeviceProfile",
    "ObjectSpec",
    "ProfileError",
    "ProfileSpec",
    "Quantity",
    "Quirks",
    "ValueType",
    "load_all",
    "load_profile",
    "profiles_dir",
]
