"""Association control (ACSE) and security suite 0 from the meter's side.

The AARQ is decoded with dlms-cosem's codec, except its user-information, which is read from the
raw bytes (dlms-cosem reads the proposed conformance one octet short). The meter's answer is an
AARE built with dlms-cosem's codec. Ciphering is AES-GCM-128 with a 12-octet tag (security suite
0), through ``dlms_cosem.security``; the initialisation vector is the sender's system title and
invocation counter.

How the meter answers, as meters do:

- an unknown or mismatched mechanism, a wrong LLS password, an AARQ that cannot be deciphered
  with the meter's keys, or the ``reject`` fault: AARE rejected-permanent with an acse-service-
  user diagnostic (authentication-failure, authentication-required, mechanism not recognised);
- an xDLMS context the meter cannot serve (DLMS version below 6, PDU size below 32): AARE
  rejected-permanent carrying a confirmedServiceError (initiateError);
- a replayed or lower invocation counter, in the AARQ or in any ciphered APDU: an exception-
  response, service-not-allowed / invocation-counter-error, carrying the counter expected.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlms_cosem import enumerations as dlms_enums
from dlms_cosem import security as dlms_security
from dlms_cosem.enumerations import AcseServiceUserDiagnostics as Diagnostic
from dlms_cosem.enumerations import AuthenticationMechanism as Mechanism
from dlms_cosem.exceptions import DecryptionError
from dlms_cosem.protocol import acse, xdlms
from dlms_cosem.protocol.xdlms.conformance import Conformance

from headend.simulator.apdus import INITIATE_REQUEST, InitiateRequest
from headend.simulator.cosem import DataError, decode_length

AARQ_TAG, AARE_TAG, RLRQ_TAG, RLRE_TAG = 0x60, 0x61, 0x62, 0x63
GLO_INITIATE_REQUEST, GLO_INITIATE_RESPONSE = 0x21, 0x28
SUITE0_AUTHENTICATED_ENCRYPTED = 0x30
SUITE0_AUTHENTICATED = 0x10
MIN_CLIENT_PDU = 32

__all__ = [
    "Diagnostic",
    "GloInitiate",
    "Mechanism",
    "SecurityError",
    "ServerSecurity",
    "aare",
    "glo_initiate_response",
    "initiate_response",
    "intersect",
    "parse_aarq",
    "parse_user_information",
    "rlre",
    "server_conformance",
]


class SecurityError(Exception):
    """A ciphered APDU or an HLS proof does not verify with the meter's keys."""


@dataclass(frozen=True)
class ServerSecurity:
    """The meter's keys and system title (security suite 0)."""

    system_title: bytes
    encryption_key: bytes
    authentication_key: bytes

    @staticmethod
    def _control(value: int) -> dlms_security.SecurityControlField:
        return dlms_security.SecurityControlField.from_bytes(bytes((value,)))

    def encrypt(self, invocation_counter: int, plain: bytes) -> bytes:
        return bytes(
            dlms_security.encrypt(
                security_control=self._control(SUITE0_AUTHENTICATED_ENCRYPTED),
                system_title=self.system_title,
                invocation_counter=invocation_counter,
                key=self.encryption_key,
                plain_text=plain,
                auth_key=self.authentication_key,
            )
        )

    def decrypt(self, title: bytes, control: int, invocation_counter: int, text: bytes) -> bytes:
        if control != SUITE0_AUTHENTICATED_ENCRYPTED or len(title) != 8 or len(text) < 12:
            raise SecurityError("not an authenticated and encrypted suite 0 APDU")
        try:
            return bytes(
                dlms_security.decrypt(
                    security_control=self._control(control),
                    system_title=title,
                    invocation_counter=invocation_counter,
                    key=self.encryption_key,
                    cipher_text=text,
                    auth_key=self.authentication_key,
                )
            )
        except DecryptionError as exc:
            raise SecurityError("authentication tag does not verify") from exc

    def gmac(self, title: bytes, control: int, invocation_counter: int, challenge: bytes) -> bytes:
        """The HLS-GMAC proof: GMAC(SC || AK || challenge), 12 octets."""
        return bytes(
            dlms_security.gmac(
                security_control=self._control(control),
                system_title=title,
                invocation_counter=invocation_counter,
                key=self.encryption_key,
                auth_key=self.authentication_key,
                challenge=challenge,
            )
        )


@dataclass(frozen=True)
class AssociationRequest:
    """What the meter needs from an AARQ."""

    ciphered_context: bool
    mechanism: Mechanism
    calling_title: bytes | None
    authentication_value: bytes | None
    user_information: bytes  # the xDLMS APDU: InitiateRequest or glo-InitiateRequest


def _user_information(apdu: bytes) -> bytes:
    """The xDLMS APDU inside the AARQ's user-information ([30] EXPLICIT OCTET STRING)."""
    pos = 2
    while pos < len(apdu):
        tag = apdu[pos]
        length, start = decode_length(apdu, pos + 1)
        if tag == 0xBE:
            inner = apdu[start : start + length]
            if len(inner) < 2 or inner[0] != 0x04:
                raise DataError("user-information is not an octet string")
            size, body = decode_length(inner, 1)
            return bytes(inner[body : body + size])
        pos = start + length
    raise DataError("AARQ without user-information")


def parse_aarq(apdu: bytes) -> AssociationRequest:
    try:
        aarq = acse.ApplicationAssociationRequest.from_bytes(apdu)
    except (ValueError, IndexError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"malformed AARQ: {exc}") from exc
    mechanism = aarq.authentication if aarq.authentication is not None else Mechanism.NONE
    return AssociationRequest(
        ciphered_context=bool(aarq.ciphered),
        mechanism=Mechanism(mechanism),
        calling_title=aarq.system_title,
        authentication_value=aarq.authentication_value,
        user_information=_user_information(apdu),
    )


@dataclass(frozen=True)
class GloInitiate:
    security_control: int
    invocation_counter: int
    ciphertext: bytes


def parse_user_information(raw: bytes) -> InitiateRequest | GloInitiate:
    if raw and raw[0] == INITIATE_REQUEST:
        return InitiateRequest.from_bytes(raw)
    if raw and raw[0] == GLO_INITIATE_REQUEST:
        size, pos = decode_length(raw, 1)
        if size < 17 or pos + size != len(raw):
            raise DataError("glo-initiate-request has the wrong length")
        return GloInitiate(raw[pos], int.from_bytes(raw[pos + 1 : pos + 5], "big"), raw[pos + 5 :])
    raise DataError("user-information holds neither an InitiateRequest nor its ciphered form")


def initiate_response(conformance: Conformance, max_receive_pdu: int) -> bytes:
    return bytes(
        xdlms.InitiateResponse(
            negotiated_conformance=conformance, server_max_receive_pdu_size=max_receive_pdu
        ).to_bytes()
    )


def glo_initiate_response(security: ServerSecurity, invocation_counter: int, plain: bytes) -> bytes:
    content = (
        bytes((SUITE0_AUTHENTICATED_ENCRYPTED,))
        + invocation_counter.to_bytes(4, "big")
        + security.encrypt(invocation_counter, plain)
    )
    return bytes((GLO_INITIATE_RESPONSE, len(content))) + content


class _RawContent:
    """User-information content that is already encoded."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def to_bytes(self) -> bytes:
        return self.raw


def aare(
    *,
    accepted: bool,
    diagnostic: Diagnostic,
    ciphered_context: bool,
    mechanism: Mechanism = Mechanism.NONE,
    system_title: bytes | None = None,
    challenge: bytes | None = None,
    user_information: bytes | None = None,
) -> bytes:
    result = (
        dlms_enums.AssociationResult.ACCEPTED
        if accepted
        else dlms_enums.AssociationResult.REJECTED_PERMANENT
    )
    response = acse.ApplicationAssociationResponse(
        result=result,
        result_source_diagnostics=diagnostic,
        ciphered=ciphered_context,
        authentication=mechanism if mechanism is not Mechanism.NONE else None,
        system_title=system_title,
        authentication_value=challenge,
        user_information=(
            acse.UserInformation(content=_RawContent(user_information))
            if user_information is not None
            else None
        ),
    )
    return bytes(response.to_bytes())


def rlre() -> bytes:
    response = acse.ReleaseResponse(reason=dlms_enums.ReleaseResponseReason.NORMAL)
    return bytes(response.to_bytes())


# the conformance a meter offers; GET with list only where the profile allows it
def server_conformance(get_with_list: bool, ciphered: bool) -> Conformance:
    return Conformance(
        general_protection=ciphered,
        block_transfer_with_get_or_read=True,
        multiple_references=get_with_list,
        get=True,
        set=True,
        selective_access=True,
        action=True,
        priority_management_supported=True,
    )


def intersect(proposed: Conformance, offered: Conformance) -> Conformance:
    names = Conformance.conformance_bit_position
    return Conformance(**{n: bool(getattr(proposed, n) and getattr(offered, n)) for n in names})
