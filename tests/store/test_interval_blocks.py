"""Interval blocks: the packing keeps every field of every version exactly, refuses what it
cannot keep, and the repository lands, versions and reads them back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.quality import Quality
from headend.store.blocks import QUALITIES, day_of, pack, unpack, unpack_many, versions_of
from headend.store.models import Meter
from headend.store.repositories.intervals import IntervalRepository, VersionTaken
from tests.conftest import import_sample_fleet

DAY = date(2026, 11, 3)
MIDNIGHT = datetime(2026, 11, 3, tzinfo=UTC)
A_PLUS = "1.0.1.8.0.255"

texts = st.none() | st.text(max_size=20)
quantities = st.none() | st.integers(-(2**62), 2**62)
versions_of_one = st.lists(
    st.tuples(
        quantities,  # value, micro-kWh
        quantities,  # cumulative
        st.sampled_from(list(Quality)),
        st.integers(0, 2**31 - 1),  # flags
        st.none() | st.integers(-(2**31), 2**31 - 1),  # status
        texts,
        texts,
        texts,
        st.none() | st.integers(1, 2**62),  # raw read id
        st.text(min_size=1, max_size=64),  # created by
        st.integers(0, 2**40),  # created at, microseconds after the midnight
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(st.integers(1, 86400), versions_of_one, min_size=1, max_size=40),
)
def test_a_packed_day_unpacks_to_exactly_the_versions_given(
    day: dict[int, list[tuple[Any, ...]]],
) -> None:
    given_versions = []
    for second, versions in day.items():
        for number, (v, c, q, f, s, m, r, i, raw, by, at) in enumerate(versions):
            end = MIDNIGHT + timedelta(seconds=second)
            created = MIDNIGHT + timedelta(microseconds=at)
            given_versions.append((end, number, v, c, q, f, s, m, r, i, raw, by, created))
    packed = pack(DAY, given_versions)
    assert versions_of(unpack(packed, DAY)) == sorted(given_versions, key=lambda v: v[:2])


def _day_as_read(values: list[int]) -> list[tuple[Any, ...]]:
    at = datetime(2026, 11, 4, 0, 7, tzinfo=UTC)
    register, out = 1_234_567_000_000, []
    for i, value in enumerate(values, start=1):
        register += value
        end = MIDNIGHT + timedelta(minutes=15 * i)
        out.append((end, 0, value, register, Quality.RAW, 0, 0, None, None, None, 9, "meter", at))
        out.append((end, 1, value, None, Quality.VALID, 0, None, None, None, None, None,
                    "vee:default", at + timedelta(minutes=5)))  # fmt: skip
    return out


def test_a_day_read_and_accepted_by_vee_packs_into_a_few_bytes_an_interval() -> None:
    # a household meter counting in Wh: 96 intervals, as read and as VEE accepted them
    values = [(i * 7919 % 600 + 20) * 1000 for i in range(96)]
    packed = pack(DAY, _day_as_read(values))
    assert len(packed) / 96 < 4
    assert versions_of(unpack(packed, DAY)) == _day_as_read(values)


def test_an_interval_ending_at_midnight_belongs_to_the_day_before() -> None:
    assert day_of(MIDNIGHT) == DAY - timedelta(days=1)
    assert day_of(MIDNIGHT + timedelta(seconds=1)) == DAY
    assert day_of(MIDNIGHT + timedelta(days=1)) == DAY
    packed = pack(DAY, [_day_as_read([5000] * 96)[-1]])
    assert versions_of(unpack(packed, DAY))[0][0] == MIDNIGHT + timedelta(days=1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({0: MIDNIGHT}, "does not end in 2026-11-03"),
        ({0: MIDNIGHT + timedelta(days=1, seconds=1)}, "does not end in 2026-11-03"),
        ({0: MIDNIGHT + timedelta(seconds=1, microseconds=5)}, "not a whole second"),
        ({0: datetime(2026, 11, 3, 1)}, "naive datetime"),
        ({1: 32768}, "version 32768 is outside"),
        ({2: Decimal("0.0000001")}, "more than 6 decimal places"),
        ({2: Decimal("1e20")}, "beyond what the store keeps"),
    ],
)
def test_what_a_block_cannot_keep_is_refused(change: dict[int, Any], message: str) -> None:
    version = list(_day_as_read([1000])[0])
    for index, value in change.items():
        version[index] = value
    with pytest.raises(ValueError, match=message):
        pack(DAY, [tuple(version)])


def test_the_same_version_of_an_interval_given_twice_is_refused() -> None:
    version = _day_as_read([1000])[0]
    with pytest.raises(ValueError, match="given twice"):
        pack(DAY, [version, version])


def test_a_damaged_block_is_refused() -> None:
    with pytest.raises(ValueError, match="not an interval block"):
        unpack(b"\x07garbage", DAY)


# -- the repository ---------------------------------------------------------------------------


def _meter(store: sessionmaker[Session]) -> int:
    import_sample_fleet(store)
    with store() as session:
        return session.scalars(select(Meter.id).order_by(Meter.id)).first() or 0


def _read(meter: int, start: datetime, count: int, version: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "meter_id": meter,
            "channel": A_PLUS,
            "interval_end": start + timedelta(minutes=15 * i),
            "version": version,
            "value": Decimal("0.250"),
            "cumulative": Decimal("100") + Decimal("0.250") * i if version == 0 else None,
            "quality": Quality.RAW if version == 0 else Quality.VALID,
            "flags": 0,
            "status": 0 if version == 0 else None,
            "created_by": "meter" if version == 0 else "vee:default",
            "created_at": MIDNIGHT + timedelta(days=2),
        }
        for i in range(1, count + 1)
    ]


@pytest.mark.db
def test_landing_across_days_is_idempotent_and_keeps_what_was_landed_first(
    store: sessionmaker[Session],
) -> None:
    meter = _meter(store)
    start = MIDNIGHT + timedelta(hours=20)  # 2026-11-03 20:00 UTC, a read over two days
    with store() as session, session.begin():
        assert IntervalRepository(session).land(_read(meter, start, 40)) == 40
    again = _read(meter, start, 60)
    for row in again:
        row["value"] = Decimal("9")  # a re-read never replaces what was landed
    with store() as session, session.begin():
        assert IntervalRepository(session).land(again) == 20
    with store() as session:
        stored = IntervalRepository(session).versions([meter], start)
    assert len(stored) == 60
    assert [v.value for v in stored[:40]] == [Decimal("0.250")] * 40
    assert [v.value for v in stored[40:]] == [Decimal("9")] * 20
    assert [v.interval_end for v in stored] == [start + timedelta(minutes=15 * i)
                                                for i in range(1, 61)]  # fmt: skip


@pytest.mark.db
def test_a_version_number_taken_is_refused_and_the_current_one_is_the_highest(
    store: sessionmaker[Session],
) -> None:
    meter = _meter(store)
    with store() as session, session.begin():
        repo = IntervalRepository(session)
        repo.land(_read(meter, MIDNIGHT, 8))
        repo.add_versions(_read(meter, MIDNIGHT, 4, version=1))
    with pytest.raises(VersionTaken), store() as session, session.begin():
        IntervalRepository(session).add_versions(_read(meter, MIDNIGHT, 1, version=1))
    with store() as session:
        repo = IntervalRepository(session)
        current = repo.versions([meter], MIDNIGHT, which="current")
        raw = repo.versions([meter], MIDNIGHT, which="raw")
        everything = repo.versions([meter], MIDNIGHT)
        before = repo.capture_before(meter, [A_PLUS], MIDNIGHT + timedelta(hours=1, minutes=1))
        last = repo.last_interval_ends([meter])
    assert [v.version for v in current] == [1, 1, 1, 1, 0, 0, 0, 0]
    assert [v.version for v in raw] == [0] * 8
    assert len(everything) == 12
    assert before == {A_PLUS: (MIDNIGHT + timedelta(hours=1), Decimal("101.000"))}
    assert last == {meter: MIDNIGHT + timedelta(hours=2)}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.integers(1, 86400), versions_of_one, min_size=0, max_size=12),
        min_size=1,
        max_size=5,
    )
)
def test_many_blocks_unpacked_at_once_give_each_blocks_versions_in_order(
    days: list[dict[int, list[tuple[Any, ...]]]],
) -> None:
    packed, expected = [], []
    for k, day in enumerate(days):
        when = DAY + timedelta(days=k)
        start = datetime(when.year, when.month, when.day, tzinfo=UTC)
        versions = []
        for second, given_versions in day.items():
            for number, (v, c, q, f, s, m, r, i, raw, by, at) in enumerate(given_versions):
                end = start + timedelta(seconds=second)
                created = start + timedelta(microseconds=at)
                versions.append((end, number, v, c, q, f, s, m, r, i, raw, by, created))
        packed.append((pack(when, versions), when))
        expected.append(sorted(versions, key=lambda v: v[:2]))
    cols, block = unpack_many(packed)
    assert versions_of(cols) == [v for versions in expected for v in versions]
    assert block.tolist() == [k for k, versions in enumerate(expected) for _ in versions]


def test_every_quality_has_a_code_in_blocks() -> None:
    assert set(QUALITIES) == set(Quality)
    assert len(QUALITIES) == len(set(QUALITIES))
