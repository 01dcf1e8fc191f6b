"""Associating with the simulated meter: lowest security, LLS, HLS-GMAC, and the ways a meter
refuses; driven by dlms-cosem's own client over an in-memory link."""

from __future__ import annotations

from datetime import timedelta

import pytest
from dlms_cosem import enumerations, exceptions, security
from dlms_cosem import state as dlms_state
from dlms_cosem.client import HLSError
from dlms_cosem.cosem.capture_object import CaptureObject
from dlms_cosem.cosem.selective_access import RangeDescriptor
from dlms_cosem.parsers import AssociationObjectListParser
from dlms_cosem.protocol import acse, xdlms
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headend.domain.enums import AuthLevel
from headend.simulator import apdus
from headend.simulator.cosem import EntrySelector
from headend.simulator.spec import Fault, FaultKind

from .server_support import (
    AK,
    CLIENT_TITLE,
    EK,
    NOW,
    attribute,
    make_client,
    make_meter,
    make_spec,
    method,
)

pytestmark = pytest.mark.timeout(30)

Diagnostic = enumerations.AcseServiceUserDiagnostics


def aare_of(raw: bytes) -> acse.ApplicationAssociationResponse:
    response = acse.ApplicationAssociationResponse.from_bytes(raw)
    assert isinstance(response, acse.ApplicationAssociationResponse)
    return response


@pytest.mark.parametrize("auth", [AuthLevel.NONE, AuthLevel.LLS, AuthLevel.HLS_GMAC])
def test_a_client_associates_reads_and_releases_at_each_security_level(auth: AuthLevel) -> None:
    meter = make_meter(make_spec(auth=auth))
    client, transport = make_client(meter)

    response = client.associate()
    serial = client.get(attribute(1, "0.0.96.1.0.255", 2))
    release = client.release_association()

    assert response.result is enumerations.AssociationResult.ACCEPTED
    assert client.dlms_connection.state.current_state is dlms_state.NO_ASSOCIATION
    assert serial == b"\x09\x0bSIM00000042"
    assert isinstance(release, acse.ReleaseResponse)
    assert transport.session.released


def test_an_hls_association_ciphers_every_apdu_after_the_aarq() -> None:
    meter = make_meter(make_spec(auth=AuthLevel.HLS_GMAC))
    client, transport = make_client(meter)

    client.associate()
    client.get(attribute(8, "0.0.1.0.0.255", 2))

    aare = aare_of(transport.received[0])
    assert aare.ciphered and aare.system_title == bytes.fromhex(meter.spec.system_title)
    assert aare.authentication is enumerations.AuthenticationMechanism.HLS_GMAC
    assert aare.result_source_diagnostics is Diagnostic.AUTHENTICATION_REQUIRED
    assert all(raw[0] == apdus.GENERAL_GLO_CIPHER for raw in transport.received[1:])
    assert transport.session.status() == 2


def test_a_wrong_password_is_rejected_with_authentication_failure() -> None:
    meter = make_meter(make_spec(auth=AuthLevel.LLS))
    client, transport = make_client(meter, password="wrong")

    with pytest.raises(exceptions.DlmsClientException):
        client.associate()

    aare = aare_of(transport.received[-1])
    assert aare.result is enumerations.AssociationResult.REJECTED_PERMANENT
    assert aare.result_source_diagnostics is Diagnostic.AUTHENTICATION_FAILED


def test_a_wrong_key_is_rejected_with_authentication_failure() -> None:
    meter = make_meter(make_spec(auth=AuthLevel.HLS_GMAC))
    client, transport = make_client(meter, authentication_key=AK[::-1])

    with pytest.raises(exceptions.DlmsClientException):
        client.associate()

    aare = aare_of(transport.received[-1])
    assert aare.result is enumerations.AssociationResult.REJECTED_PERMANENT
    assert aare.result_source_diagnostics is Diagnostic.AUTHENTICATION_FAILED


def test_a_meter_with_the_reject_fault_refuses_even_the_right_password() -> None:
    meter = make_meter(make_spec(auth=AuthLevel.LLS, faults=(Fault(FaultKind.REJECT),)))
    client, transport = make_client(meter)

    with pytest.raises(exceptions.DlmsClientException):
        client.associate()

    assert aare_of(transport.received[-1]).result_source_diagnostics is (
        Diagnostic.AUTHENTICATION_FAILED
    )


def test_a_client_without_authentication_is_told_a_secured_meter_requires_it() -> None:
    meter = make_meter(make_spec(auth=AuthLevel.LLS))
    client, transport = make_client(meter, AuthLevel.NONE)

    with pytest.raises(exceptions.DlmsClientException):
        client.associate()

    assert aare_of(transport.received[-1]).result_source_diagnostics is (
        Diagnostic.AUTHENTICATION_REQUIRED
    )


def test_an_aarq_with_a_replayed_invocation_counter_is_refused_with_the_expected_one() -> None:
    meter = make_meter(make_spec(auth=AuthLevel.HLS_GMAC))
    first, _ = make_client(meter, client_invocation_counter=100)
    first.associate()
    first.get(attribute(8, "0.0.1.0.0.255", 2))
    last_used = first.client_invocation_counter - 1
    first.release_association()
    second, transport = make_client(meter, client_invocation_counter=50)

    with pytest.raises(exceptions.DlmsClientException):
        second.associate()

    answer = xdlms.ExceptionResponse.from_bytes(transport.received[-1])
    assert answer.service_error is enumerations.ServiceException.INVOCATION_COUNTER_ERROR
    assert answer.invocation_counter_data == last_used + 1


def test_a_replayed_ciphered_request_is_refused_inside_the_association() -> None:
    meter = make_meter(make_spec(auth=AuthLevel.HLS_GMAC))
    client, transport = make_client(meter)
    client.associate()
    client.get(attribute(8, "0.0.1.0.0.255", 2))
    replay = transport.sent[-1]

    answer = transport.session.handle(replay)

    assert answer is not None
    decoded = xdlms.ExceptionResponse.from_bytes(answer)
    assert decoded.service_error is enumerations.ServiceException.INVOCATION_COUNTER_ERROR


def test_a_meter_with_the_wrong_ic_fault_is_caught_by_the_clients_replay_check() -> None:
    meter = make_meter(make_spec(auth=AuthLevel.HLS_GMAC, faults=(Fault(FaultKind.WRONG_IC),)))
    client, transport = make_client(meter)

    with pytest.raises(exceptions.LocalDlmsProtocolError, match="invocation counter"):
        client.associate()

    aare = aare_of(transport.received[0])
    first = xdlms.GlobalCipherInitiateResponse.from_bytes(aare.user_information.content.to_bytes())
    second = apdus.Ciphered.from_bytes(transport.received[1])
    assert second.invocation_counter < first.invocation_counter


def test_the_meters_invocation_counter_rises_across_associations() -> None:
    meter = make_meter(make_spec(auth=AuthLevel.HLS_GMAC))
    counters = []
    for start in (1, 1000):
        client, transport = make_client(meter, client_invocation_counter=start)
        client.associate()
        client.get(attribute(8, "0.0.1.0.0.255", 2))
        client.release_association()
        counters += [apdus.Ciphered.from_bytes(raw).invocation_counter for raw in
                     transport.received[1:-1]]  # fmt: skip

    assert counters == sorted(set(counters))


def test_a_request_before_any_association_gets_an_exception_response() -> None:
    meter = make_meter()
    session = meter.device.new_association()
    request = xdlms.GetRequestNormal(cosem_attribute=attribute(8, "0.0.1.0.0.255", 2)).to_bytes()

    answer = session.handle(request)

    assert answer is not None
    decoded = xdlms.ExceptionResponse.from_bytes(answer)
    assert decoded.state_error is enumerations.StateException.SERVICE_NOT_ALLOWED


@pytest.mark.parametrize(
    "garbage", [b"\x60\x05\x01", b"\xc0\x01", b"\x42\x00", b"\xc0\x01\xc1\x00"]
)
def test_malformed_bytes_get_an_answer_never_an_exception(garbage: bytes) -> None:
    meter = make_meter()
    client, transport = make_client(meter)
    client.associate()

    answer = transport.session.handle(garbage)

    assert answer is not None and answer[0] in (0x61, apdus.EXCEPTION_RESPONSE)


def test_a_model_without_release_support_stays_silent_on_a_release_request() -> None:
    meter = make_meter()
    quirks = meter.profile.quirks.model_copy(update={"supports_release": False})
    meter.device.profile = meter.profile.model_copy(update={"quirks": quirks})
    client, transport = make_client(meter)
    client.associate()

    with pytest.raises(TimeoutError):
        client.release_association()

    assert not transport.session.released


def test_the_negotiated_pdu_size_is_the_smaller_of_client_and_meter() -> None:
    meter = make_meter()
    small, small_link = make_client(meter, max_pdu_size=200)
    large, large_link = make_client(meter)

    small.associate()
    large.associate()

    assert small_link.session.negotiated_max_pdu == 200
    assert large_link.session.negotiated_max_pdu == meter.profile.quirks.max_pdu_size


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(noise=st.binary(min_size=1, max_size=80), auth=st.sampled_from(list(AuthLevel)))
def test_any_bytes_at_any_point_get_an_answer_or_silence_never_an_exception(
    noise: bytes, auth: AuthLevel
) -> None:
    meter = make_meter(make_spec(auth=auth))
    session = meter.device.new_association()
    client, transport = make_client(meter, session=session)
    client.associate()
    aarq = transport.sent[0]

    for apdu in (noise, aarq[: len(noise)] + noise, transport.sent[-1][:-1] + noise[:1]):
        answer = session.handle(apdu)
        assert answer is None or isinstance(answer, bytes)


def _recorded_requests() -> list[bytes]:
    """Every APDU a plain client sends in a session that uses each service."""
    meter = make_meter()
    client, transport = make_client(meter)
    client.associate()
    clock = CaptureObject(attribute(8, "0.0.1.0.0.255", 2))
    start = NOW - timedelta(hours=1)
    client.get(attribute(7, "1.0.99.1.0.255", 2), RangeDescriptor(clock, start, NOW))
    client.get(attribute(7, "1.0.99.1.0.255", 2), EntrySelector(1, 2))
    client.set(attribute(8, "0.0.1.0.0.255", 2), meter.device.context(2).encode_time(NOW))
    client.action(method(70, "0.0.96.3.10.255", 1), b"\x0f\x00")
    client.release_association()
    return transport.sent


RECORDED = _recorded_requests()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(min_value=0, max_value=len(RECORDED) - 1),
    position=st.integers(min_value=0, max_value=200),
    byte=st.integers(min_value=0, max_value=255),
    keep=st.integers(min_value=1, max_value=200),
)
def test_a_corrupted_request_gets_an_answer_never_an_exception(
    which: int, position: int, byte: int, keep: int
) -> None:
    meter = make_meter()
    client, transport = make_client(meter)
    client.associate()
    original = bytearray(RECORDED[which])
    original[position % len(original)] = byte

    answer = transport.session.handle(bytes(original[:keep]))

    assert answer is None or isinstance(answer, bytes)


def test_a_wrong_hls_proof_leaves_the_meter_unassociated() -> None:
    meter = make_meter(make_spec(auth=AuthLevel.HLS_GMAC))
    client, transport = make_client(meter)
    authentication = client.dlms_connection.authentication
    authentication.hls_generate_reply_data = lambda connection: b"\x10" + bytes(16)

    with pytest.raises(HLSError):
        client.associate()

    assert transport.session.status() == 0
    answer = transport.session.handle(transport.sent[-1])
    assert answer is not None and answer[0] == apdus.EXCEPTION_RESPONSE


def test_service_specific_global_ciphering_is_answered_in_kind() -> None:
    meter = make_meter(make_spec(auth=AuthLevel.HLS_GMAC))
    client, transport = make_client(meter)
    client.associate()
    plain = xdlms.GetRequestNormal(cosem_attribute=attribute(1, "0.0.96.1.0.255", 2)).to_bytes()
    counter = client.client_invocation_counter
    control = security.SecurityControlField(0, authenticated=True, encrypted=True)
    keys = {"key": bytes.fromhex(EK), "auth_key": bytes.fromhex(AK)}
    text = security.encrypt(control, CLIENT_TITLE, counter, plain_text=plain, **keys)
    content = b"\x30" + counter.to_bytes(4, "big") + text
    glo_get = bytes((0xC8, len(content))) + content

    answer = transport.session.handle(glo_get)

    assert answer is not None and answer[0] == 0xCC
    response = apdus.Ciphered.from_bytes(bytes((0xC8,)) + answer[1:])
    title = bytes.fromhex(meter.spec.system_title)
    decrypted = security.decrypt(control, title, response.invocation_counter,
                                 cipher_text=response.ciphertext, **keys)  # fmt: skip
    assert decrypted == bytes.fromhex("c4 01 c1 00 090b") + b"SIM00000042"


def test_the_object_list_is_what_dlms_cosem_parses() -> None:
    meter = make_meter()
    client, _ = make_client(meter, max_pdu_size=256)
    client.associate()

    raw = client.get(attribute(15, "0.0.40.0.0.255", 2))

    objects = AssociationObjectListParser.parse_bytes(raw)
    listed = {(item.interface, str(item.logical_name.to_string("."))) for item in objects}
    assert (7, "1.0.99.1.0.255") in listed
    assert (70, "0.0.96.3.10.255") in listed
    assert len(objects) == len(meter.profile.declared_classes())
