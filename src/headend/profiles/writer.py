"""Writing a drafted device profile as YAML, in the layout of the shipped profiles, with the
draft's notes (what was found on the meter, what was guessed) as comments.

The text is loaded back and validated before it is returned: what ``render`` gives is a
profile the loader takes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from headend.profiles.draft import Draft
from headend.profiles.model import DeviceProfile

ORDER = (
    "name",
    "description",
    "register_resolution_wh",
    "quirks",
    "clock",
    "objects",
    "load_profile",
    "billing_profile",
    "event_log",
    "disconnect_control",
    "association",
    "tariffs",
    "billing",
    "status_bits",
    "reads",
)
_PLAIN = re.compile(r"^[A-Za-z0-9_./+-]+$")
_WIDTH = 96


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    reserved = text.lower() in {"yes", "no", "on", "off", "true", "false", "null", "~"}
    if _PLAIN.match(text) and not reserved and not text.replace(".", "").isdigit():
        return text
    if re.fullmatch(r"\d+(\.\d+){5}", text):  # an OBIS code: plain, as the shipped profiles
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _comment(text: str, indent: str = "") -> list[str]:
    """``text`` as comment lines of at most about ``_WIDTH`` characters."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(indent) + 2 + len(current) + 1 + len(word) > _WIDTH:
            lines.append(f"{indent}# {current}")
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(f"{indent}# {current}")
    return lines


def _block(key: str, value: Any, draft: Draft) -> list[str]:
    lines = [f"{key}:"]
    for n, (sub, item) in enumerate(value.items()):
        note = draft.item_notes.get((key, n))
        if isinstance(item, list) and item and isinstance(item[0], dict):
            lines.append(f"  {sub}:")
            lines += [f"    - {_flow(entry)}" for entry in item]
        elif (
            isinstance(item, dict)
            and item
            and all(not isinstance(v, dict) for v in item.values())
            and len(item) > 3
        ):
            lines.append(f"  {sub}:")
            lines += [f"    {k}: {_scalar(v)}" for k, v in item.items()]
        else:
            line = f"  {sub}: {_flow(item)}"
            lines.append(f"{line}  # {note}" if note else line)
    return lines


def render(draft: Draft) -> str:
    """The profile as YAML text with comments; validated by loading it back."""
    out: list[str] = []
    for line in draft.notes.get("header", []):
        out += _comment(line)
    out.append("")
    for key in ORDER:
        if key not in draft.doc:
            continue
        value = draft.doc[key]
        notes = draft.notes.get(key, [])
        if isinstance(value, (dict, list)):
            out.append("")
        for line in notes:
            out += _comment(line)
        if key == "objects":
            out.append("objects:")
            for n, entry in enumerate(value):
                note = draft.item_notes.get(("objects", n))
                line = f"  - {_flow(entry)}"
                out.append(f"{line}  # {note}" if note else line)
        elif isinstance(value, dict):
            out += _block(key, value, draft)
        else:
            out.append(f"{key}: {_scalar(value)}")
    text = "\n".join(out) + "\n"
    DeviceProfile.model_validate(yaml.safe_load(text))  # a bug of ours if this fails
    return text
