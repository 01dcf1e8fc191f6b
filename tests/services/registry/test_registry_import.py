from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import AuthLevel, GatewayKind
from headend.domain.registry_format import REGISTRY_COLUMNS
from headend.services.registry.imports import RegistryImportError, export_registry, import_registry
from headend.services.registry.service import RegistryService
from headend.store.models import Gateway, Meter, MeterSecret
from headend.store.secrets import SecretBox
from tests.conftest import REPO, TEST_SECRET_KEY

PROFILES = frozenset({"single_phase_residential", "three_phase_tou"})
SAMPLE = REPO / "fixtures" / "sample_fleet.csv"
BOX = SecretBox(TEST_SECRET_KEY)


def _rows(path: Path = SAMPLE) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _write(
    tmp_path: Path,
    rows: list[dict[str, str]],
    name: str = "fleet.csv",
    columns: tuple[str, ...] = REGISTRY_COLUMNS,
) -> Path:
    path = tmp_path / name
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _snapshot(store: sessionmaker[Session]) -> list[tuple[object, ...]]:
    with store() as session:
        meters = [
            (m.meter_id, m.gateway_id, m.device_profile, m.ct_ratio, m.status, m.updated_at)
            for m in session.scalars(select(Meter).order_by(Meter.meter_id))
        ]
        gateways = [
            (g.name, g.kind, g.port, g.site, g.updated_at)
            for g in session.scalars(select(Gateway).order_by(Gateway.name))
        ]
        secrets = [
            (s.name, s.ciphertext)
            for s in session.scalars(select(MeterSecret).order_by(MeterSecret.name))
        ]
    return [*meters, *gateways, *secrets]


def test_the_sample_fleet_imports_with_its_gateways_and_secrets(
    store: sessionmaker[Session],
) -> None:
    summary = import_registry(store, SAMPLE, BOX, PROFILES)
    assert summary.meters_added == 24
    assert summary.gateways_added == 18  # 16 modems, one RS485 bus, one serial port
    with store() as session:
        bus = session.scalars(select(Gateway).where(Gateway.name == "rs485-substation-a")).one()
        assert bus.kind is GatewayKind.TCP_SERIAL and bus.max_sessions == 1
        assert len(bus.meters) == 6
        hls = session.scalars(select(Meter).where(Meter.auth == AuthLevel.HLS_GMAC)).first()
        assert hls is not None and hls.secret is not None
        opened = BOX.open(hls.secret.name, hls.secret.ciphertext)
        assert opened.hls_encryption_key is not None and len(opened.hls_encryption_key) == 16


def test_reimporting_the_same_file_changes_nothing(store: sessionmaker[Session]) -> None:
    import_registry(store, SAMPLE, BOX, PROFILES)
    before = _snapshot(store)
    summary = import_registry(store, SAMPLE, BOX, PROFILES)
    assert summary.meters_unchanged == 24
    assert (summary.meters_added, summary.meters_updated, summary.secrets_updated) == (0, 0, 0)
    assert _snapshot(store) == before


def test_a_changed_row_is_an_update_of_that_meter_only(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    import_registry(store, SAMPLE, BOX, PROFILES)
    rows = _rows()
    rows[3]["ct_ratio"] = "5"
    summary = import_registry(store, _write(tmp_path, rows), BOX, PROFILES)
    assert (summary.meters_updated, summary.meters_unchanged) == (1, 23)
    assert summary.changed_meter_ids == [rows[3]["meter_id"]]
    with store() as session:
        meter = session.scalars(select(Meter).where(Meter.meter_id == rows[3]["meter_id"])).one()
        assert meter.ct_ratio == 5


def test_a_file_with_bad_rows_names_each_one_and_leaves_the_store_unchanged(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    import_registry(store, SAMPLE, BOX, PROFILES)
    before = _snapshot(store)
    rows = _rows()
    rows[0]["ct_ratio"] = "5"  # a valid change that must not be applied either
    rows[1]["gateway_port"] = "70000"
    rows[2]["auth"] = "hls"
    rows[4]["device_profile"] = "no_such_model"
    rows[5]["meter_id"] = rows[6]["meter_id"]
    rows[7]["hls_encryption_key"] = "zz"
    rows[8]["install_date"] = "2026-13-01"
    rows[17]["server_physical"] = ""  # HDLC needs a physical address
    rows.append({**rows[9], "meter_id": "2619999999", "gateway": "nowhere", "gateway_kind": ""})
    with pytest.raises(RegistryImportError) as caught:
        import_registry(store, _write(tmp_path, rows), BOX, PROFILES)
    found = {(e.line, e.field) for e in caught.value.errors}
    assert {
        (3, "gateway_port"),
        (4, "auth"),
        (6, "device_profile"),
        (8, "meter_id"),
        (9, "hls_encryption_key"),
        (10, "install_date"),
        (19, "server_physical"),
        (26, "gateway"),
    } <= found
    messages = [str(e) for e in caught.value.errors]
    assert "line 3, gateway_port: must be from 1 to 65535, got 70000" in messages
    assert any("already appears on line 7" in m for m in messages)
    assert _snapshot(store) == before


def test_a_file_with_a_wrong_header_is_refused_before_any_row(
    store: sessionmaker[Session],
) -> None:
    text = io.StringIO("meter_id,colour\n123,blue\n")
    with pytest.raises(RegistryImportError) as caught:
        import_registry(store, text, BOX, PROFILES)
    assert str(caught.value.errors[0]).startswith("header, header: missing columns: service_point")
    assert "unknown columns: colour" in str(caught.value.errors[1])


def test_two_meters_at_one_address_on_a_bus_are_refused(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = _rows()
    rows[17]["server_physical"] = rows[16]["server_physical"]
    with pytest.raises(RegistryImportError) as caught:
        import_registry(store, _write(tmp_path, rows), BOX, PROFILES)
    assert [(e.line, e.field) for e in caught.value.errors] == [(19, "server_physical")]


def test_secrets_are_stored_encrypted_and_never_exported(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    import_registry(store, SAMPLE, BOX, PROFILES)
    password = _rows()[0]["lls_password"]
    with store() as session:
        for secret in session.scalars(select(MeterSecret)):
            assert password.encode() not in secret.ciphertext
            assert "ciphertext" not in repr(secret)
    out = io.StringIO()
    assert export_registry(store, out) == 24
    assert password not in out.getvalue()
    assert "meter:2611000001" in out.getvalue()


def test_an_export_reimports_as_a_no_op(store: sessionmaker[Session], tmp_path: Path) -> None:
    import_registry(store, SAMPLE, BOX, PROFILES)
    before = _snapshot(store)
    exported = tmp_path / "export.csv"
    with exported.open("w", newline="") as handle:
        export_registry(store, handle)
    summary = import_registry(store, exported, BOX, PROFILES)
    assert summary.meters_unchanged == 24
    assert _snapshot(store) == before


def test_a_secret_key_other_than_the_one_used_to_store_cannot_open_secrets(
    store: sessionmaker[Session],
) -> None:
    import_registry(store, SAMPLE, BOX, PROFILES)
    other = SecretBox("another-key-0123456789abcdefghijklmnopqrstuvwxyz")
    with pytest.raises(Exception, match="HEADEND_SECRET_KEY differs"):
        import_registry(store, SAMPLE, other, PROFILES)


def _sites(store: sessionmaker[Session]) -> dict[str, str | None]:
    with store() as session:
        return {g.name: g.site for g in session.scalars(select(Gateway))}


def _with_sites(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The sample rows with the RS485 bus (line 18) at site north and the serial port
    (line 24) at site substation-b.2; the modems belong to no site."""
    rows[16]["gateway_site"] = "north"
    rows[22]["gateway_site"] = "substation-b.2"
    return rows


def test_a_gateways_site_is_imported_and_shown_with_the_gateway(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    summary = import_registry(store, _write(tmp_path, _with_sites(_rows())), BOX, PROFILES)
    assert summary.gateways_added == 18
    sites = _sites(store)
    assert (sites["rs485-substation-a"], sites["serial-0"], sites["gprs-0001"]) == (
        "north", "substation-b.2", None,
    )  # fmt: skip
    registry = RegistryService(store)
    shown = {g["name"]: g for g in registry.gateways()}
    assert (shown["rs485-substation-a"]["site"], shown["gprs-0001"]["site"]) == ("north", None)
    assert registry.meter("2611000103")["gateway_site"] == "north"  # a row naming the bus only


def test_a_changed_site_on_reimport_updates_that_gateway_and_no_meter(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = _with_sites(_rows())
    import_registry(store, _write(tmp_path, rows), BOX, PROFILES)
    rows[16]["gateway_site"] = "south"
    summary = import_registry(store, _write(tmp_path, rows), BOX, PROFILES)
    assert (summary.gateways_added, summary.gateways_updated) == (0, 1)
    assert (summary.meters_updated, summary.meters_unchanged) == (0, 24)
    assert _sites(store)["rs485-substation-a"] == "south"


def test_an_emptied_site_leaves_the_gateway_in_no_site(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = _with_sites(_rows())
    import_registry(store, _write(tmp_path, rows), BOX, PROFILES)
    rows[22]["gateway_site"] = ""
    summary = import_registry(store, _write(tmp_path, rows), BOX, PROFILES)
    assert summary.gateways_updated == 1
    assert (_sites(store)["serial-0"], _sites(store)["rs485-substation-a"]) == (None, "north")


@pytest.mark.parametrize("site", ["north site", "-north", "nörth", "n" * 65, "north/1"])
def test_a_bad_site_name_is_refused_naming_its_row_and_column_and_nothing_is_stored(
    store: sessionmaker[Session], tmp_path: Path, site: str
) -> None:
    import_registry(store, SAMPLE, BOX, PROFILES)
    before = _snapshot(store)
    rows = _with_sites(_rows())  # valid site changes that must not be applied either
    rows[0]["gateway_site"] = site
    with pytest.raises(RegistryImportError) as caught:
        import_registry(store, _write(tmp_path, rows), BOX, PROFILES)
    assert [str(e) for e in caught.value.errors] == [
        "line 2, gateway_site: must be 1-64 letters, digits, '.', '_' or '-' starting with a "
        f"letter or digit (the NAME of headend worker --site NAME), got {site!r}"
    ]
    assert _snapshot(store) == before


def test_a_bad_site_name_in_a_new_registry_is_the_only_problem_reported(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = _rows()
    rows[16]["gateway_site"] = "north site"
    with pytest.raises(RegistryImportError) as caught:
        import_registry(store, _write(tmp_path, rows), BOX, PROFILES)
    assert [(e.line, e.field) for e in caught.value.errors] == [(18, "gateway_site")]
    assert _sites(store) == {}


def test_a_gateway_given_two_sites_on_two_rows_is_refused_as_described_differently(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = _with_sites(_rows())
    described = {c: rows[16][c] for c in REGISTRY_COLUMNS if c.startswith("gateway_")}
    rows[17].update(described, gateway_site="south")
    with pytest.raises(RegistryImportError) as caught:
        import_registry(store, _write(tmp_path, rows), BOX, PROFILES)
    assert [str(e) for e in caught.value.errors] == [
        "line 19, gateway: gateway 'rs485-substation-a' is described differently on line 18"
    ]
    assert _sites(store) == {}


def test_a_site_on_a_row_that_only_names_its_gateway_asks_for_the_gateway_kind(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = _rows()
    rows[17]["gateway_site"] = "north"
    with pytest.raises(RegistryImportError) as caught:
        import_registry(store, _write(tmp_path, rows), BOX, PROFILES)
    assert [(e.line, e.field) for e in caught.value.errors] == [(19, "gateway_kind")]


def test_a_file_written_before_the_gateway_site_column_imports_its_gateways_in_no_site(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    old_columns = tuple(c for c in REGISTRY_COLUMNS if c != "gateway_site")
    path = _write(tmp_path, _rows(), columns=old_columns)
    assert "gateway_site" not in path.read_text().splitlines()[0]
    summary = import_registry(store, path, BOX, PROFILES)
    assert (summary.meters_added, summary.gateways_added) == (24, 18)
    assert set(_sites(store).values()) == {None}


def test_an_export_carries_each_gateways_site_and_reimports_as_a_no_op(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    import_registry(store, _write(tmp_path, _with_sites(_rows())), BOX, PROFILES)
    before = _snapshot(store)
    exported = tmp_path / "export.csv"
    with exported.open("w", newline="") as handle:
        export_registry(store, handle)
    header = exported.read_text().splitlines()[0].split(",")
    assert header[header.index("gateway_max_sessions") + 1] == "gateway_site"
    sites = {r["meter_id"]: r["gateway_site"] for r in _rows(exported)}
    assert (sites["2611000100"], sites["2611000105"], sites["2611000201"]) == (
        "north", "north", "substation-b.2",
    )  # fmt: skip
    assert sites["2611000001"] == ""
    summary = import_registry(store, exported, BOX, PROFILES)
    assert (summary.gateways_updated, summary.meters_unchanged) == (0, 24)
    assert _snapshot(store) == before
