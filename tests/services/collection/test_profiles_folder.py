"""The collection service loads device profiles from the folder it is given: a profile missing
there is a configuration problem naming the folder searched and the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from headend.services.collection.runner import CollectionService, ConfigurationProblem

pytestmark = pytest.mark.timeout(30)


def service(folder: Path | None) -> CollectionService:
    unused: Any = None
    return CollectionService(unused, unused, profiles_dir=folder)


def test_a_profile_missing_from_the_configured_folder_names_the_folder_and_the_setting(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigurationProblem) as caught:
        service(tmp_path).profile("single_phase_residential")

    assert (
        f"no such profile single_phase_residential in {tmp_path.resolve()} (HEADEND_PROFILES_DIR)"
        in str(caught.value)
    )


def test_without_a_folder_the_shipped_profiles_are_used() -> None:
    assert service(None).profile("three_phase_tou").register_resolution_wh == 10
