"""Loading device profiles from the ``protocols/`` folder, validated against the schema.

Every error names the file, the key and the problem, e.g.
``protocols/x.yaml: load_profile.capture_period_s: must be a positive multiple of 60``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from headend.profiles.model import DeviceProfile

PROFILES_DIR_VARIABLE = "HEADEND_PROFILES_DIR"


class ProfileError(ValueError):
    """A device profile is missing or does not match the schema."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(where + problem)


def profiles_dir(directory: Path | str | None = None) -> Path:
    """The folder of profiles: ``directory`` (the ``profiles_dir`` setting, which the caller
    passes in), else the repository's ``protocols/`` (found by walking up from this file).
    The environment is never read here: settings are built once and passed in."""
    if directory is not None:
        return Path(directory)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "protocols"
        if candidate.is_dir():
            return candidate
    raise ProfileError(
        "protocols",
        "",
        f"no protocols/ folder found; set the profiles folder ({PROFILES_DIR_VARIABLE})",
    )


def _where(folder: Path) -> str:
    """``/abs/folder (HEADEND_PROFILES_DIR)``: the folder searched and the setting naming it."""
    return f"{folder.resolve()} ({PROFILES_DIR_VARIABLE})"


def _display(path: Path) -> str:
    """``protocols/x.yaml`` for the repository's folder, the full path otherwise."""
    return f"{path.parent.name}/{path.name}"


def _key(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def problem_text(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def parse_profile(path: Path) -> DeviceProfile:
    """Read and validate one profile file."""
    shown = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(shown, "", f"cannot read the file ({exc.strerror})") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(shown, "", f"not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ProfileError(shown, "", "the file must hold a mapping of keys")
    if raw.get("name") != path.stem:
        raise ProfileError(shown, "name", f"must be {path.stem!r}, the file's name")
    try:
        return DeviceProfile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = problem_text(first["msg"])
        key = _key(first["loc"])
        # a model-level check names its own key inside the message
        if ": " in message and not key:
            key, message = message.split(": ", 1)
        raise ProfileError(shown, key, message) from exc


@lru_cache(maxsize=64)
def _load_cached(path: Path, mtime_ns: int) -> DeviceProfile:
    return parse_profile(path)


def load_profile(name: str, directory: Path | str | None = None) -> DeviceProfile:
    """The profile ``<name>.yaml``; loaded once per file version."""
    folder = profiles_dir(directory)
    path = (folder / f"{name}.yaml").resolve()
    if not folder.is_dir():
        raise ProfileError(
            _display(path), "", f"no such profile {name}: no folder {_where(folder)}"
        )
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) or "none"
        raise ProfileError(
            _display(path), "", f"no such profile {name} in {_where(folder)}; known: {known}"
        )
    return _load_cached(path, path.stat().st_mtime_ns)


def profile_names(directory: Path | str | None = None) -> frozenset[str]:
    """Names of the profiles in the folder (none when the folder does not exist)."""
    return frozenset(p.stem for p in profiles_dir(directory).glob("*.yaml"))


def load_all(directory: Path | str | None = None) -> dict[str, DeviceProfile]:
    """Every profile of the folder, by name."""
    folder = profiles_dir(directory)
    return {path.stem: load_profile(path.stem, folder) for path in sorted(folder.glob("*.yaml"))}
