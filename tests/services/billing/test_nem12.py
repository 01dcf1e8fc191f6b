"""The NEM12 profile export: record order and counts, values, quality methods, V days."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.quality import Quality
from headend.services.billing.nem12 import quality_method
from headend.services.billing.service import BillingService, UnknownMeter, parse_period
from headend.services.registry.imports import import_registry
from headend.store.models import Meter
from headend.store.secrets import SecretBox
from tests.conftest import REPO, TEST_SECRET_KEY
from tests.intervals import store_versions

ICT = ZoneInfo("Asia/Ho_Chi_Minh")
A_PLUS = "1.0.1.8.0.255"
HOUSE, BUSINESS = "2611000003", "2611000100"  # 15 minutes, CT 1; 30 minutes, CT 200
DAY_ONE = datetime(2026, 11, 24, 17, tzinfo=UTC)  # 2026-11-25 00:00 in Hanoi
WRITTEN = datetime(2026, 11, 27, 1, 2, 3, tzinfo=UTC)  # when VEE wrote the versions
NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


def _value(i: int) -> Decimal:
    return Decimal(i % 7 + 1) / 100


def _rows(
    pk: int, period_s: int, day: int, slots: dict[int, Quality | None]
) -> list[dict[str, Any]]:
    """Version 0 (as read) and version 1 of each interval k (1-based) of day ``day``."""
    rows = []
    for k, quality in slots.items():
        end = DAY_ONE + timedelta(days=day, seconds=period_s * k)
        base = {"meter_id": pk, "channel": A_PLUS, "interval_end": end, "flags": 0}
        rows.append(
            {**base, "version": 0, "value": _value(k), "quality": Quality.RAW, "method": None}
            | {"created_by": "meter", "created_at": WRITTEN - timedelta(hours=1)}
        )
        if quality is not None:
            value = None if quality is Quality.MISSING else _value(k)
            method = "E3" if quality is Quality.EST_LINEAR else None
            rows.append(
                {**base, "version": 1, "value": value, "quality": quality, "method": method}
                | {"created_by": "vee", "created_at": WRITTEN}
            )
    return rows


@pytest.fixture
def filled(store: sessionmaker[Session]) -> sessionmaker[Session]:
    """A house with an all-valid day and a mixed day; a business meter with one valid day."""
    import_registry(
        store,
        REPO / "fixtures" / "sample_fleet.csv",
        SecretBox(TEST_SECRET_KEY),
        frozenset({"single_phase_residential", "three_phase_tou"}),
    )
    with store() as session, session.begin():
        pk = {meter_id: id_ for meter_id, id_ in session.execute(select(Meter.meter_id, Meter.id))}
        mixed: dict[int, Quality | None] = dict.fromkeys(range(1, 97), Quality.VALID)
        mixed.update(dict.fromkeys(range(41, 45), Quality.EST_LINEAR))
        mixed[45] = Quality.SUSPECT
        del mixed[60]  # never read, not estimated
        mixed[61] = Quality.MISSING
        rows = (
            _rows(pk[HOUSE], 900, 0, dict.fromkeys(range(1, 97), Quality.VALID))
            + _rows(pk[HOUSE], 900, 1, mixed)
            + _rows(pk[BUSINESS], 1800, 0, dict.fromkeys(range(1, 49), Quality.VALID))
        )
        store_versions(session, rows)
    return store


def _export(
    store: sessionmaker[Session], meter_ids: list[str] | None, page_size: int = 500
) -> tuple[int, list[str]]:
    period = parse_period(None, "2026-11-25T00:00+07:00", "2026-11-27T00:00+07:00", ICT)
    out = io.StringIO()
    service = BillingService(store, ICT, page_size=page_size)
    count = service.nem12(period, out, meter_ids, now=NOW)
    return count, out.getvalue().splitlines()


def test_a_nem12_file_has_its_records_in_order_with_a_300_per_channel_and_local_day(
    filled: sessionmaker[Session],
) -> None:
    count, lines = _export(filled, [BUSINESS, HOUSE])
    kinds = [line.split(",")[0] for line in lines]
    day = ["300"]
    v_day = ["300", *["400"] * 6]  # six runs of one quality method
    assert kinds == [
        "100",
        *(["200", *day, *v_day]),  # the house's import: a valid day, then a mixed one
        *(["200", *day, *day]),  # its export: nothing read, two null days
        *(["200", *day, *day]),  # the business meter's import
        *(["200", *day, *day]),  # and export
        "900",
    ]
    assert count == kinds.count("300") == 8
    assert lines[0] == "100,NEM12,202611281000,HEADEND,EVN"  # local creation time
    headers = [line for line in lines if line.startswith("200,")]
    assert headers == [
        f"200,{HOUSE},E1B1,1.8.0,E1,N1,{HOUSE},KWH,15,",
        f"200,{HOUSE},E1B1,2.8.0,B1,N2,{HOUSE},KWH,15,",
        f"200,{BUSINESS},E1B1,1.8.0,E1,N1,{BUSINESS},KWH,30,",
        f"200,{BUSINESS},E1B1,2.8.0,B1,N2,{BUSINESS},KWH,30,",
    ]


def test_a_300_record_holds_every_interval_of_the_day_after_the_multiplier(
    filled: sessionmaker[Session],
) -> None:
    _, lines = _export(filled, None)
    house = lines[lines.index(f"200,{HOUSE},E1B1,1.8.0,E1,N1,{HOUSE},KWH,15,") + 1].split(",")
    assert house[:2] == ["300", "20261125"]
    assert house[2:98] == [str(_value(k).normalize()) for k in range(1, 97)]
    assert house[98:] == ["A", "", "", "20261127080203", ""]  # 96 values, then the rest
    business_at = lines.index(f"200,{BUSINESS},E1B1,1.8.0,E1,N1,{BUSINESS},KWH,30,")
    business = lines[business_at + 1].split(",")
    assert len(business) == 2 + 48 + 5
    assert business[2:50] == [f"{(_value(k) * 200).normalize():f}" for k in range(1, 49)]
    empty = lines[business_at + 2].split(",")
    assert empty[:2] == ["300", "20261126"]
    assert empty[2:50] == ["0"] * 48 and empty[50:] == ["N", "", "", "", ""]


def test_a_day_of_mixed_qualities_says_v_with_400_records_for_each_run(
    filled: sessionmaker[Session],
) -> None:
    _, lines = _export(filled, [HOUSE])
    at = lines.index(f"200,{HOUSE},E1B1,1.8.0,E1,N1,{HOUSE},KWH,15,") + 2
    mixed = lines[at].split(",")
    assert mixed[:2] == ["300", "20261126"]
    assert mixed[98] == "V"
    assert mixed[2 + 44] == "0"  # interval 45 is suspect: held, not exported as actual
    assert mixed[2 + 59] == mixed[2 + 60] == "0"  # 60 never read, 61 missing
    assert mixed[2 + 40] == str(_value(41).normalize())  # an estimate is a value
    assert (
        lines[at + 1 : at + 8]
        == [
            "400,1,40,A,,",
            "400,41,44,S17,,",  # E3, linear interpolation
            "400,45,45,N,0,suspect, held for review",
            "400,46,59,A,,",
            "400,60,61,N,,",
            "400,62,96,A,,",
            f"200,{HOUSE},E1B1,2.8.0,B1,N2,{HOUSE},KWH,15,",
        ][:7]
    )
    assert lines[-1] == "900"


def test_every_meter_is_exported_in_order_whatever_the_page_size(
    filled: sessionmaker[Session],
) -> None:
    count, lines = _export(filled, None)
    assert count == 24 * 2 * 2  # the sample fleet: 24 meters, import and export, two days
    meters = [line.split(",")[1] for line in lines if line.startswith("200,")]
    assert meters == sorted(meters) and len(set(meters)) == 24
    assert _export(filled, None, page_size=40) == (count, lines)  # two meters a page


def test_quality_methods_follow_the_reference_mapping() -> None:
    assert quality_method(Quality.VALID) == ("A", "", "")
    assert quality_method(Quality.VERIFIED) == ("A", "", "")
    assert quality_method(Quality.EST_LINEAR)[0] == "S17"
    assert quality_method(Quality.EST_LIKEDAY)[0] == "S14"
    assert quality_method(Quality.EST_AVG_LIKEDAY)[0] == "S15"
    assert quality_method(Quality.EST_SCALED_TO_REGISTER)[0] == "S24"
    assert quality_method(Quality.EST_ZERO)[0] == "S19"
    assert quality_method(Quality.EDITED)[0] == "S16"
    assert quality_method(Quality.FORWARD_EST, "E3")[0] == "E17"
    assert quality_method(Quality.RAW) == ("N", "0", "not yet validated")
    assert quality_method(None) == quality_method(Quality.MISSING) == ("N", "", "")


def test_an_export_of_an_unknown_meter_is_refused(filled: sessionmaker[Session]) -> None:
    with pytest.raises(UnknownMeter, match="NOPE"):
        _export(filled, [HOUSE, "NOPE"])
