from __future__ import annotations

from pathlib import Path

import pytest

from headend.config import DEMO_SECRET_KEY, ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("HEADEND_"):
            monkeypatch.delenv(key)


def test_defaults_are_a_local_sqlite_file_and_the_utility_time_zone() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///headend.db"
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8000)


def test_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADEND_DATABASE_URL", "postgresql+psycopg://db/headend")
    monkeypatch.setenv("HEADEND_API_PORT", "9000")
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://db/headend"
    assert settings.api_port == 9000


def test_a_config_file_is_read_and_the_environment_wins_over_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "headend.toml"
    config.write_text('timezone = "Asia/Bangkok"\napi_port = 8100\n')
    monkeypatch.setenv("HEADEND_CONFIG", str(config))
    monkeypatch.setenv("HEADEND_API_PORT", "8200")
    settings = load_settings()
    assert settings.timezone == "Asia/Bangkok"
    assert settings.api_port == 8200


def test_the_profiles_folder_is_the_shipped_one_unless_set() -> None:
    assert load_settings().profiles_dir is None


def test_the_profiles_folder_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADEND_PROFILES_DIR", str(tmp_path))
    assert load_settings().profiles_dir == tmp_path


def test_the_profiles_folder_comes_from_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "headend.toml"
    config.write_text(f"profiles_dir = '{tmp_path / 'models'}'\n")
    monkeypatch.setenv("HEADEND_CONFIG", str(config))
    assert load_settings().profiles_dir == tmp_path / "models"


def test_an_unknown_time_zone_is_refused_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEADEND_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match=r"HEADEND_TIMEZONE: .*unknown time zone 'Mars/Olympus'"):
        load_settings()


def test_an_unknown_setting_in_the_config_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "headend.toml"
    config.write_text("colour = 'blue'\n")
    monkeypatch.setenv("HEADEND_CONFIG", str(config))
    with pytest.raises(ConfigError, match="HEADEND_COLOUR"):
        load_settings()


def test_a_missing_secret_key_is_refused_outside_the_demo() -> None:
    with pytest.raises(ConfigError, match="HEADEND_SECRET_KEY is not set"):
        load_settings().encryption_secret()


def test_a_placeholder_or_short_secret_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADEND_SECRET_KEY", "changeme")
    with pytest.raises(ConfigError, match="not set"):
        load_settings().encryption_secret()
    monkeypatch.setenv("HEADEND_SECRET_KEY", "short-but-not-a-placeholder")
    with pytest.raises(ConfigError, match="at least 32"):
        load_settings().encryption_secret()


def test_the_demo_key_is_accepted_only_in_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADEND_SECRET_KEY", DEMO_SECRET_KEY)
    with pytest.raises(ConfigError, match="public demo key"):
        load_settings().encryption_secret()
    monkeypatch.setenv("HEADEND_DEMO", "1")
    assert load_settings().encryption_secret() == DEMO_SECRET_KEY
    monkeypatch.delenv("HEADEND_SECRET_KEY")
    assert load_settings().encryption_secret() == DEMO_SECRET_KEY


def test_the_secret_key_never_shows_in_a_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADEND_SECRET_KEY", "a-very-long-secret-key-that-must-stay-hidden")
    assert "must-stay-hidden" not in repr(load_settings())
