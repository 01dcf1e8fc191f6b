"""A raw read's payload is stored packed and read back equal, key order included; the
migration packs stored payloads and unpacks them again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.store import migrations
from headend.store.engine import make_engine, make_session_factory
from headend.store.models import Meter, RawRead
from headend.store.payloads import COLUMNS, PLAIN, decode, encode
from tests.conftest import import_sample_fleet

A_PLUS, A_MINUS = "1.0.1.8.0.255", "1.0.2.8.0.255"


def _profile(days: int, zone: timezone = UTC, start: str = "12345.678") -> dict[str, Any]:
    first = datetime(2026, 11, 1, tzinfo=UTC).astimezone(zone)
    register = int(start.replace(".", ""))
    rows = []
    for i in range(1, days * 96 + 1):
        register += i * 7919 % 600 + 20
        text = f"{register // 1000}.{register % 1000:03d}"
        rows.append([(first + timedelta(minutes=15 * i)).isoformat(), 8 if i % 97 == 0 else 0,
                     {A_PLUS: text, A_MINUS: "0.000"}])  # fmt: skip
    return {
        "serial_number": "SIM001",
        "firmware": None,
        "clock": {"meter_time": first.isoformat(), "status": 0, "deviation_min": -420},
        "registers": {A_PLUS: {"value": "12345.678", "unit": "kWh", "scaler": -3}},
        "load_profile": {
            "obis": "1.0.99.1.0.255",
            "capture_period_s": 900,
            "columns": [{"class_id": 3, "obis": A_PLUS, "attribute": 2}],
            "rows": rows,
        },
        "events": [],
    }


def test_a_month_of_load_profile_packs_by_column_into_a_few_bytes_an_interval() -> None:
    payload = _profile(31)
    packed = encode(payload)
    assert packed[0] == COLUMNS
    assert decode(packed) == payload
    assert list(decode(packed)) == list(payload)  # key order kept
    intervals = 31 * 96 * 2
    assert len(packed) / intervals < 3
    assert len(json.dumps(payload)) / intervals > 40


@pytest.mark.parametrize(
    "change",
    [
        lambda rows: rows,  # as it is
        lambda rows: [[t, s, {A_MINUS: v[A_MINUS], A_PLUS: v[A_PLUS]}] for t, s, v in rows],
        lambda rows: [[t, s, {**v, A_MINUS: "-0.000"}] for t, s, v in rows],
        lambda rows: [[t, s, {**v, A_MINUS: "-12.5"}] for t, s, v in rows],
        lambda rows: [[t, s, {**v, A_MINUS: "1E+3"}] for t, s, v in rows],
    ],
)
def test_load_profile_rows_of_every_shape_come_back_as_they_were(change: Any) -> None:
    for zone in (UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-3, minutes=-30))):
        payload = _profile(2, zone)
        payload["load_profile"]["rows"] = change(payload["load_profile"]["rows"])
        packed = encode(payload)
        assert packed[0] == COLUMNS
        assert decode(packed) == payload


@pytest.mark.parametrize(
    "change",
    [
        lambda rows: [[t.replace("T", " "), s, v] for t, s, v in rows],  # not ISO 8601 as written
        lambda rows: [[t[:19], s, v] for t, s, v in rows],  # no offset
        lambda rows: [
            [t, s, {A_PLUS: v[A_PLUS]}] if i == 5 else [t, s, v] for i, (t, s, v) in enumerate(rows)
        ],
        lambda rows: [[t, s, {**v, A_PLUS: "12.50 kWh"}] for t, s, v in rows],
        lambda rows: [[t, s, {**v, A_PLUS: 12.5}] for t, s, v in rows],
        lambda rows: [[t, s, {**v, A_PLUS: "NaN"}] for t, s, v in rows],
    ],
)
def test_rows_that_do_not_fit_the_columns_are_kept_as_json(change: Any) -> None:
    payload = _profile(1)
    payload["load_profile"]["rows"] = change(payload["load_profile"]["rows"])
    packed = encode(payload)
    assert packed[0] == PLAIN
    assert decode(packed) == payload


@pytest.mark.parametrize("end", ["0001-01-01T00:15:00+07:00", "9999-12-31T23:45:00-03:30"])
def test_rows_at_the_ends_of_the_calendar_come_back_as_they_were(end: str) -> None:
    payload = _profile(1)
    payload["load_profile"]["rows"] = [[end, 0, {A_PLUS: "1.5", A_MINUS: "0.000"}]]
    assert decode(encode(payload)) == payload


@settings(max_examples=300, deadline=None)
@given(st.lists(st.decimals(allow_nan=False, allow_infinity=False), min_size=1, max_size=40))
def test_register_values_in_any_decimal_notation_pack_by_column_and_come_back_as_they_were(
    values: list[Decimal],
) -> None:
    payload = _profile(1)
    rows = payload["load_profile"]["rows"][: len(values)]
    payload["load_profile"]["rows"] = [
        [t, s, {A_PLUS: str(value), A_MINUS: v[A_MINUS]}]
        for (t, s, v), value in zip(rows, values, strict=True)
    ]
    packed = encode(payload)
    assert packed[0] == COLUMNS
    assert decode(packed) == payload


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_value_comes_back_as_it_was(value: Any) -> None:
    assert decode(encode(value)) == value


def test_a_damaged_payload_is_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match="not a stored payload"):
        decode(b"\x09abc")
    with pytest.raises(ValueError, match="does not decode"):
        decode(bytes([PLAIN]) + b"not deflated")


LEGACY_RAW = sa.Table(
    "raw_reads",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("meter_id", sa.Integer),
    sa.Column("kind", sa.String(32)),
    sa.Column("read_at", sa.DateTime(timezone=True)),
    sa.Column("payload", sa.JSON),
    sa.Column("content_hash", sa.String(64)),
)


@pytest.mark.db
def test_the_payload_migration_packs_stored_payloads_and_unpacks_them_again(
    fresh_database_url: str,
) -> None:
    # the registry is imported by today's code, then the schema taken back to plain payloads
    migrations.upgrade(fresh_database_url)
    engine = make_engine(fresh_database_url)
    store: sessionmaker[Session] = make_session_factory(engine)
    payloads = [_profile(3), {"serial_number": "X", "load_profile": None}, _profile(1)]
    try:
        import_sample_fleet(store)
        migrations.downgrade(fresh_database_url, "0006_interval_blocks")
        with engine.begin() as conn:
            meter = conn.execute(select(Meter.id).order_by(Meter.id)).scalars().first()
            conn.execute(
                LEGACY_RAW.insert(),
                [
                    {"meter_id": meter, "kind": "load_profile", "payload": p,
                     "content_hash": f"{n:064d}", "read_at": datetime(2026, 11, 4, tzinfo=UTC)}
                    for n, p in enumerate(payloads)
                ],
            )  # fmt: skip
        migrations.upgrade(fresh_database_url)
        with store() as session:
            stored = session.scalars(select(RawRead).order_by(RawRead.id)).all()
            assert [r.payload for r in stored] == payloads
            assert [list(r.payload) for r in stored] == [list(p) for p in payloads]
        migrations.downgrade(fresh_database_url, "0006_interval_blocks")
        with engine.connect() as conn:
            back = conn.execute(select(LEGACY_RAW.c.payload).order_by(LEGACY_RAW.c.id)).scalars()
            assert list(back) == payloads
    finally:
        engine.dispose()
