"""``headend profiles discover`` and ``headend profiles check --host`` against simulated meters
on real sockets, over the TCP wrapper and HDLC: a discovered profile describes the model the
meter is (objects, profiles, clock, quirks), `profiles check` takes it offline and live, the
meter's quirks are found and coped with, and a live check names each difference between a
profile and the meter."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from headend.cli import profiles
from headend.cli.main import State
from headend.cli.output import Commands
from headend.domain.enums import AuthLevel, Transport
from headend.profiles import DeviceProfile, load_profile
from headend.profiles.loader import parse_profile, profiles_dir
from headend.simulator.spec import PDU_OVERRUN, MeterSpec, Quirk
from tests.ports import free_port
from tests.protocol.simfleet import AK, EK, PASSWORD, meter, serving

pytestmark = pytest.mark.timeout(180)

SINGLE, THREE = "single_phase_residential", "three_phase_tou"
PERIOD = {SINGLE: 900, THREE: 1800}
QUIRKS = (
    Quirk.OBJECT_LIST_REFUSED,
    Quirk.SHORT_LIST_AFTER_FAILURE,
    Quirk.WRONG_INVOKE_ID_ON_ERROR,
    Quirk.RELEASE_NEVER_ANSWERED,
    Quirk.HARDWARE_FAULT_FOR_MISSING,
)
# quirks tried on their own in test_profiles_discover_quirks.py; here only with the others
LATER_QUIRKS = (Quirk.PDU_IGNORED, Quirk.DEVIATION_UNSPECIFIED, Quirk.NO_SELECTIVE_ACCESS)
TRANSPORTS = (Transport.WRAPPER, Transport.HDLC)


@dataclass(frozen=True)
class Served:
    ports: dict[Transport, int]
    specs: dict[str, MeterSpec]

    def options(self, meter_id: str) -> list[str]:
        spec = self.specs[meter_id]
        return [
            "--host",
            "127.0.0.1",
            "--port",
            str(self.ports[spec.transport]),
            "--transport",
            spec.transport.value,
            "--server-address",
            str(spec.server_logical),
            "--physical-address",
            str(spec.server_physical),
            "--timeout",
            "2",
            *(["--auth", "lls", "--password", PASSWORD] if spec.auth is AuthLevel.LLS else []),
            *(
                ["--auth", "hls_gmac", "--encryption-key", EK, "--authentication-key", AK]
                if spec.auth is AuthLevel.HLS_GMAC
                else []
            ),
        ]


def _meter(
    meter_id: str, model: str, transport: Transport, n: int, port: int, **changes: object
) -> MeterSpec:
    spec = meter(meter_id, transport, port, profile=model, logical=n + 1, physical=17 + n, seed=n)
    changes.setdefault("capture_period_s", PERIOD[model])
    return replace(spec, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    ports = {t: free_port() for t in TRANSPORTS}
    specs: list[MeterSpec] = []
    for transport in TRANSPORTS:
        port, code = ports[transport], transport.value[0].upper()
        made = [
            (f"{SINGLE}-{code}", SINGLE, {}),
            (f"{THREE}-{code}", THREE, {}),
            *((f"{q.value}-{code}", SINGLE, {"quirks": (q,)}) for q in QUIRKS),
            (f"all-quirks-{code}", THREE, {"quirks": QUIRKS + LATER_QUIRKS}),
            (f"every-30-min-{code}", SINGLE, {"capture_period_s": 1800}),
            (
                f"refused-no-demand-{code}",
                SINGLE,
                {"quirks": (Quirk.OBJECT_LIST_REFUSED,), "missing_objects": ("1.0.1.6.0.255",)},
            ),
            (f"lls-{code}", THREE, {"auth": AuthLevel.LLS, "password": PASSWORD}),
            (
                f"hls-{code}",
                SINGLE,
                {"auth": AuthLevel.HLS_GMAC, "encryption_key": EK, "authentication_key": AK},
            ),
        ]
        for n, (meter_id, model, changes) in enumerate(made):
            specs.append(_meter(meter_id, model, transport, n, port, **changes))
    # the meters' clocks run on ours: a discovered time zone is read against the real time
    with serving(specs, now=None):
        yield Served(ports, {s.meter_id: s for s in specs})


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("HEADEND_"):
            monkeypatch.delenv(key)


def run(*args: str) -> tuple[int, str, str]:
    app = typer.Typer(cls=Commands)

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = State()

    profiles.register(app)
    result = CliRunner().invoke(app, ["profiles", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def discover(served: Served, meter_id: str, folder: Path, name: str) -> Path:
    path = folder / f"{name}.yaml"
    code, out, err = run("discover", *served.options(meter_id), "--name", name, "-o", str(path))
    assert code == 0, err
    assert out.strip() == str(path)
    return path


def assert_same_model(found: DeviceProfile, shipped: DeviceProfile, **quirks: object) -> None:
    """Everything a read depends on is the shipped model's."""

    def objects(profile: DeviceProfile) -> list[tuple[object, ...]]:
        return [
            (o.obis, o.class_id, o.quantity, o.scaler, o.unit, o.tariff, o.resolved_value_type)
            for o in profile.objects
        ]

    assert objects(found) == objects(shipped)
    assert found.load_profile == shipped.load_profile
    assert found.billing_profile == shipped.billing_profile
    assert found.event_log == shipped.event_log
    assert found.disconnect_control == shipped.disconnect_control
    assert found.clock == shipped.clock
    assert found.tariffs == shipped.tariffs
    assert found.billing == shipped.billing
    assert found.reads == shipped.reads
    assert found.register_resolution_wh == shipped.register_resolution_wh
    assert found.quirks == shipped.quirks.model_copy(update=quirks)


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
@pytest.mark.parametrize("model", [SINGLE, THREE])
def test_a_profile_discovered_from_each_model_is_that_model_and_passes_check_offline_and_live(
    served: Served, tmp_path: Path, model: str, transport: Transport
) -> None:
    meter_id = f"{model}-{transport.value[0].upper()}"
    path = discover(served, meter_id, tmp_path, "acme_x100")
    assert_same_model(parse_profile(path), load_profile(model))
    text = path.read_text()
    assert "Objects from the association's object list" in text
    assert "# time_zone guessed:" in text
    offline = run("check", str(path))
    assert offline[:2] == (0, f"{path}: ok\n")
    live = run("check", str(path), *served.options(meter_id))
    assert live[:2] == (0, f"{path}: ok\n"), live[2]


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
@pytest.mark.parametrize("quirk", QUIRKS, ids=lambda q: q.value)
def test_discover_copes_with_a_meter_quirk(
    served: Served, tmp_path: Path, quirk: Quirk, transport: Transport
) -> None:
    meter_id = f"{quirk.value}-{transport.value[0].upper()}"
    path = discover(served, meter_id, tmp_path, "quirky")
    found = parse_profile(path)
    text = path.read_text()
    if quirk is Quirk.RELEASE_NEVER_ANSWERED:
        assert_same_model(found, load_profile(SINGLE), supports_release=False)
        assert "supports_release: false  # tried: release (RLRQ): no well-formed RLRE" in text
    else:
        assert_same_model(found, load_profile(SINGLE))
    if quirk is Quirk.OBJECT_LIST_REFUSED:
        assert "The meter refused its object list" in text
        assert "read-write-denied" in text
    if quirk is Quirk.SHORT_LIST_AFTER_FAILURE:
        assert "a list holding an object the meter lacks came back garbled" in text
    assert run("check", str(path), *served.options(meter_id))[:2] == (0, f"{path}: ok\n")


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_discover_reads_a_meter_with_every_quirk_that_refuses_its_object_list(
    served: Served, tmp_path: Path, transport: Transport
) -> None:
    meter_id = f"all-quirks-{transport.value[0].upper()}"
    path = discover(served, meter_id, tmp_path, "all_quirks")
    assert_same_model(
        parse_profile(path),
        load_profile(THREE),  # whose clock sends its times with an unspecified deviation
        supports_release=False,
        supports_range_access=False,
        supports_entry_access=False,
        oversized_pdu_tolerance=PDU_OVERRUN,
    )
    text = path.read_text()
    assert "The meter refused its object list" in text
    assert "the session learned: wrong_invoke_id_on_error" in text
    assert (
        "supports_get_with_list: false  # found: the meter's conformance (in its AARE) offers no "
        "GET with list" in text
    )
    assert run("check", str(path), *served.options(meter_id))[:2] == (0, f"{path}: ok\n")


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_a_live_check_against_a_meter_capturing_every_30_minutes_names_the_period(
    served: Served, transport: Transport
) -> None:
    shipped = profiles_dir() / f"{SINGLE}.yaml"
    meter_id = f"every-30-min-{transport.value[0].upper()}"
    code, out, _ = run("check", str(shipped), *served.options(meter_id))
    assert code == 1
    assert out.splitlines() == [
        f"{shipped}: load_profile.capture_period_s: the meter captures every 1800 s; "
        "the profile says 900 s"
    ]


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_a_live_check_of_a_profile_capturing_other_objects_names_each_difference(
    served: Served, tmp_path: Path, transport: Transport
) -> None:
    raw = yaml.safe_load((profiles_dir() / f"{SINGLE}.yaml").read_text())
    raw["name"] = "no_export_channel"
    raw["load_profile"]["capture_objects"].pop(1)  # the meter also captures its AMR status
    raw["load_profile"]["capture_period_s"] = 1800
    path = tmp_path / "no_export_channel.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    meter_id = f"{SINGLE}-{transport.value[0].upper()}"
    code, out, _ = run("check", str(path), *served.options(meter_id))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}: load_profile.capture_objects: the meter captures [")
    assert "[0.0.1.0.0.255/2 (class 8), 0.0.96.10.1.255/2 (class 1), 1.0.1.8.0.255/2" in lines[0]
    assert "; the profile says [0.0.1.0.0.255/2 (class 8), 1.0.1.8.0.255/2 (class 3)," in lines[0]
    assert lines[1] == (
        f"{path}: load_profile.capture_period_s: the meter captures every 900 s; "
        "the profile says 1800 s"
    )


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_a_live_check_on_a_meter_refusing_its_object_list_finds_a_missing_object_by_get(
    served: Served, transport: Transport
) -> None:
    shipped = profiles_dir() / f"{SINGLE}.yaml"
    meter_id = f"refused-no-demand-{transport.value[0].upper()}"
    code, out, _ = run("check", str(shipped), *served.options(meter_id))
    assert code == 1
    assert out.splitlines() == [
        f"{shipped}: objects.8: 1.0.1.6.0.255: the meter answers object-undefined as class 4"
    ]


def test_discover_of_a_meter_that_does_not_answer_prints_one_line_with_its_category(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens there
    code, out, err = run(
        "discover", "--host", "127.0.0.1", "--port", str(port), "--name", "x", "-o",
        str(tmp_path / "x.yaml"), "--timeout", "1",
    )  # fmt: skip
    assert code == 1
    assert out == ""
    assert err.startswith("headend profiles discover: unreachable: ")
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "x.yaml").exists()


def test_discover_refuses_a_name_a_profile_cannot_have(tmp_path: Path) -> None:
    code, _, err = run("discover", "--host", "127.0.0.1", "--name", "Acme-X", "-o", "a.yaml")
    assert code == 2
    assert err == "headend profiles discover: --name: use lower-case letters, digits and _\n"


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_a_meter_without_maximum_demand_gets_a_profile_without_it_that_checks_live(
    served: Served, tmp_path: Path, transport: Transport
) -> None:
    meter_id = f"refused-no-demand-{transport.value[0].upper()}"
    path = discover(served, meter_id, tmp_path, "no_demand")
    found = parse_profile(path)
    assert "max_demand" not in {o.quantity.value for o in found.objects}
    assert found.reads.registers == load_profile(SINGLE).reads.registers[:-1]
    # its billing profile captures the maximum demand the meter lacks: left out, and said so
    assert found.billing_profile is None
    assert "# billing_profile left out: billing_profile 0.0.98.1.0.255 captures 1.0.1.6.0.255" in (
        path.read_text()
    )
    assert found.load_profile == load_profile(SINGLE).load_profile
    assert run("check", str(path), *served.options(meter_id))[:2] == (0, f"{path}: ok\n")


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_discover_and_the_live_check_authenticate_with_a_password(
    served: Served, tmp_path: Path, transport: Transport
) -> None:
    meter_id = f"lls-{transport.value[0].upper()}"
    path = discover(served, meter_id, tmp_path, "with_lls")
    assert_same_model(parse_profile(path), load_profile(THREE))
    assert run("check", str(path), *served.options(meter_id))[:2] == (0, f"{path}: ok\n")
    wrong = [o if o != PASSWORD else "not-the-password" for o in served.options(meter_id)]
    code, out, _ = run("check", str(path), *wrong)
    assert code == 1
    assert out.startswith(f"{path}: live: authentication_failed: ")
    assert len(out.splitlines()) == 1


def test_a_live_check_of_a_meter_that_does_not_answer_prints_one_line_per_file() -> None:
    shipped = [str(profiles_dir() / f"{name}.yaml") for name in (SINGLE, THREE)]
    port = free_port()  # nothing listens there
    code, out, _ = run("check", *shipped, "--host", "127.0.0.1", "--port", str(port))
    assert code == 1
    lines = out.splitlines()
    assert [line.split(": live: ")[0] for line in lines] == shipped
    assert all(": live: unreachable: " in line for line in lines)


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_discover_and_the_live_check_associate_with_hls_gmac_on_rising_counters(
    served: Served, tmp_path: Path, transport: Transport
) -> None:
    meter_id = f"hls-{transport.value[0].upper()}"
    path = tmp_path / "with_hls.yaml"
    options = served.options(meter_id)
    found = run(
        "discover", *options, "--invocation-counter", "1", "--name", "with_hls", "-o", str(path)
    )
    assert found[:2] == (0, f"{path}\n"), found[2]
    assert_same_model(parse_profile(path), load_profile(SINGLE))
    checked = run("check", str(path), *options, "--invocation-counter", "5000")
    assert checked[:2] == (0, f"{path}: ok\n"), checked[2]
    # a counter the meter has seen already is refused, as a meter refuses a replay
    replayed = run("check", str(path), *options, "--invocation-counter", "1")
    assert replayed[0] == 1
    assert replayed[1].startswith(f"{path}: live: association_rejected: ")
    assert replayed[1].rstrip().endswith("invocation-counter-error")


def test_discover_refuses_a_file_not_named_after_the_profile_and_keeps_an_existing_one(
    served: Served, tmp_path: Path
) -> None:
    options = served.options(f"{SINGLE}-W")
    other = run("discover", *options, "--name", "acme", "-o", str(tmp_path / "x.yaml"))
    assert other == (2, "", "headend profiles discover: -o: the file must be named acme.yaml\n")
    kept = tmp_path / "acme.yaml"
    kept.write_text("mine\n")
    code, _, err = run("discover", *options, "--name", "acme", "-o", str(kept))
    assert (code, err) == (2, f"headend profiles discover: {kept} exists (--force overwrites it)\n")
    assert kept.read_text() == "mine\n"
    code, out, _ = run("discover", *options, "--name", "acme", "-o", str(kept), "--force")
    assert (code, out) == (0, f"{kept}\n")
    assert parse_profile(kept).name == "acme"


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_a_live_check_of_a_profile_with_another_scaler_names_the_meters_and_the_profiles(
    served: Served, tmp_path: Path, transport: Transport
) -> None:
    raw = yaml.safe_load((profiles_dir() / f"{SINGLE}.yaml").read_text())
    raw["name"] = "wrong_scaler"
    index = next(i for i, o in enumerate(raw["objects"]) if o["obis"] == "1.0.1.8.0.255")
    meter_scaler, unit = raw["objects"][index]["scaler"], raw["objects"][index]["unit"]
    raw["objects"][index]["scaler"] = meter_scaler + 3
    path = tmp_path / "wrong_scaler.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    meter_id = f"{SINGLE}-{transport.value[0].upper()}"
    code, out, _ = run("check", str(path), *served.options(meter_id))
    assert code == 1
    assert out.splitlines() == [
        f"{path}: objects.{index}: 1.0.1.8.0.255 has scaler {meter_scaler} and unit {unit} on "
        f"the meter, scaler {meter_scaler + 3} and unit {unit} here (headend scales by the "
        "meter's)"
    ]
