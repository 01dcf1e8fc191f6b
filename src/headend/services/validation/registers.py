"""The VEE pass's judgement of register reads: each read still as the meter gave it (RAW) gets
the quality ``headend.vee.register_quality`` gives it, stored as the read's next version."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from headend.domain.obis import Obis
from headend.domain.quality import Quality
from headend.store.repositories.vee import VeeRepository
from headend.vee.register_quality import RegisterPoint, judge_registers
from headend.vee.ruleset import default_rules

CREATED_BY = "vee"


def judge_register_reads(
    repo: VeeRepository,
    profiles: dict[int, str],
    starts: dict[int, datetime],
    history: timedelta,
    now: datetime,
) -> int:
    """Give the meters' register reads taken after their start (``starts``, by meter pk) that
    are still RAW their quality, as a new version each; earlier reads, back to ``history``
    before the earliest start, are there to compare with. ``profiles``: each meter's device
    profile (its rule set). Returns how many reads were judged."""
    current: dict[tuple[int, str, datetime], Any] = {}
    for row in repo.register_versions(list(starts), min(starts.values()) - history):
        current[(row.meter_id, row.obis, row.read_at)] = row  # by version: the last wins
    points: dict[int, list[RegisterPoint]] = defaultdict(list)
    rows: dict[tuple[int, Obis, datetime], Any] = {}
    for (pk, obis_text, read_at), row in current.items():
        if row.value is None:
            continue
        obis = Obis.parse(obis_text)
        judged = row.quality is Quality.RAW and read_at > starts[pk]
        points[pk].append(RegisterPoint(obis, read_at, row.value, judged))
        rows[(pk, obis, read_at)] = row
    inserts: list[dict[str, Any]] = []
    for pk, found in points.items():
        rules = default_rules().for_meter(profiles[pk])
        for verdict in judge_registers(found, rules):
            row = rows[(pk, verdict.obis, verdict.read_at)]
            inserts.append(
                {
                    "meter_id": pk,
                    "obis": row.obis,
                    "read_at": row.read_at,
                    "version": row.version + 1,
                    "value": row.value,
                    "unit": row.unit,
                    "capture_time": row.capture_time,
                    "quality": verdict.quality,
                    "flags": 0,
                    "method": None,
                    "rules": ",".join(verdict.rules) or None,
                    "raw_read_id": None,
                    "created_by": CREATED_BY,
                    "created_at": now,
                }
            )
    if inserts:
        repo.add_register_versions(inserts)
    return len(inserts)
