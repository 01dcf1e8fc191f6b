"""The JSON document of ``headend vee run``: intervals and findings, values as exact decimals.

Values are JSON strings holding the decimal (``"0.250"``), so no reader turns them into
binary floating point; a missing value is ``null``. Actuals keep the digits they were read
with; estimates are given at the rule set's resolution. Times are in the utility's time zone.
An interval's ``rules`` are the validation rules that fired on it, informational ones included
(power down, clock adjusted, long zero runs), so a VALID interval may carry some. Each finding
also carries ``params``, the parameters its rule ran with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from headend.vee.model import Finding, IntervalVersion, VeeResult


def interval_json(v: IntervalVersion) -> dict[str, Any]:
    return {
        "meter_id": v.meter_id,
        "channel": v.channel,
        "interval_end": v.interval_end.isoformat(),
        "value": None if v.value is None else format(v.value, "f"),
        "quality": v.quality.value,
        "method": v.method,
        "rules": list(v.rules),
    }


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "meter_id": f.meter_id,
        "channel": f.channel,
        "start": f.start.isoformat(),
        "end": f.end.isoformat(),
        "detail": f.detail,
        "params": dict(f.params),
    }


def result_json(result: VeeResult) -> dict[str, Any]:
    intervals = sorted(result.versions, key=lambda v: (v.meter_id, v.channel, v.interval_end))
    return {
        "intervals": [interval_json(v) for v in intervals],
        "findings": [finding_json(f) for f in result.findings],
    }


def json_chunks(result: VeeResult) -> Iterator[str]:
    """The same document as ``result_json``, one interval or finding per line."""
    document = result_json(result)
    for key, opener in (("intervals", '{"intervals": ['), ("findings", '], "findings": [')):
        yield opener + "\n"
        items = document[key]
        for i, item in enumerate(items):
            tail = ",\n" if i < len(items) - 1 else "\n"
            yield json.dumps(item, ensure_ascii=False) + tail
    yield "]}\n"
