"""The application association (ACSE and HLS-GMAC), client side, sans I/O.

``Association`` builds the AARQ, reads the AARE (with the meter's diagnostic on a reject),
runs HLS passes 3 and 4, ciphers and deciphers APDUs of a ciphered association, and builds
the RLRQ. AARQ and AARE use dlms-cosem's ACSE codecs; the lifecycle is our transition table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum

from dlms_cosem import enumerations as dlms_enums
from dlms_cosem.protocol import acse as dlms_acse
from dlms_cosem.protocol import xdlms as dlms_xdlms
from dlms_cosem.protocol.xdlms.conformance import Conformance
from dlms_cosem.security import SecurityControlField

from headend.domain.enums import AuthLevel
from headend.domain.obis import Obis
from headend.protocol import axdr, xdlms
from headend.protocol.errors import (
    AssociationRejectedError,
    AuthenticationFailedError,
    ClientStateError,
    ConfigurationError,
    DecodeError,
    translating,
)
from headend.protocol.security import Ciphering, CounterLease

ASSOCIATION_LN = 15
CURRENT_ASSOCIATION = Obis(0, 0, 40, 0, 0, 255)
REPLY_TO_HLS = 1

_USER_DIAGNOSTICS = {
    d.value: d.name.lower().replace("_", "-") for d in dlms_enums.AcseServiceUserDiagnostics
}


MIN_SERVER_PDU = 12  # IEC 62056-5-3: smaller max-receive-pdu-size values are reserved


class AssociationState(StrEnum):
    IDLE = "idle"
    AWAITING_AARE = "awaiting_aare"
    HLS_PENDING = "hls_pending"
    AWAITING_HLS_RESULT = "awaiting_hls_result"
    READY = "ready"
    AWAITING_RLRE = "awaiting_rlre"
    CLOSED = "closed"


_S = AssociationState
TRANSITIONS: dict[AssociationState, dict[str, AssociationState]] = {
    _S.IDLE: {"aarq": _S.AWAITING_AARE},
    _S.AWAITING_AARE: {"accepted": _S.READY, "hls": _S.HLS_PENDING, "failed": _S.CLOSED},
    _S.HLS_PENDING: {"hls_reply": _S.AWAITING_HLS_RESULT, "failed": _S.CLOSED},
    _S.AWAITING_HLS_RESULT: {"accepted": _S.READY, "failed": _S.CLOSED},
    _S.READY: {"rlrq": _S.AWAITING_RLRE, "abandon": _S.CLOSED},
    _S.AWAITING_RLRE: {"released": _S.CLOSED},
}


@dataclass(frozen=True)
class AssociationSettings:
    auth: AuthLevel = AuthLevel.NONE
    password: bytes | None = None
    encryption_key: bytes | None = None
    authentication_key: bytes | None = None
    client_title: bytes = bytes.fromhex("4845414445000001")
    max_pdu: int = 1024  # client-max-receive-pdu-size we propose
    challenge_length: int = 16

    def __post_init__(self) -> None:
        if not 64 <= self.max_pdu <= 0xFFFF:
            raise ConfigurationError("the proposed PDU size must be within 64..65535")
        if self.auth is AuthLevel.LLS and not self.password:
            raise ConfigurationError("LLS needs a password")
        if self.auth is AuthLevel.HLS_GMAC and not (
            self.encryption_key and self.authentication_key
        ):
            raise ConfigurationError("HLS-GMAC needs an encryption key and an authentication key")


def proposed_conformance(ciphered: bool) -> Conformance:
    return Conformance(
        general_protection=ciphered,
        general_block_transfer=False,
        priority_management_supported=True,
        block_transfer_with_get_or_read=True,
        multiple_references=True,
        get=True,
        set=True,
        selective_access=True,
        action=True,
    )


class Association:
    def __init__(self, settings: AssociationSettings, counters: CounterLease | None = None) -> None:
        self.settings = settings
        self.state = AssociationState.IDLE
        self.server_max_pdu = 0xFFFF
        self.conformance: Conformance | None = None
        self.server_title: bytes | None = None
        self.ciphering: Ciphering | None = None
        self._counters = counters
        self._challenge = b""
        self._server_challenge = b""
        if settings.auth is AuthLevel.HLS_GMAC:
            assert settings.encryption_key and settings.authentication_key
            if counters is None:
                raise ConfigurationError("HLS-GMAC needs an invocation counter store")
            self.ciphering = Ciphering(
                settings.encryption_key, settings.authentication_key, settings.client_title
            )

    def _advance(self, event: str) -> None:
        try:
            self.state = TRANSITIONS[self.state][event]
        except KeyError:
            raise ClientStateError(
                f"association cannot take {event!r} in state {self.state}"
            ) from None

    def _counter(self) -> int:
        assert self._counters is not None
        return self._counters.take()

    @property
    def ciphered(self) -> bool:
        return self.ciphering is not None

    @property
    def supports_with_list(self) -> bool:
        return self.conformance is None or bool(self.conformance.multiple_references)

    # --- AARQ / AARE ------------------------------------------------------------------------
    def aarq(self) -> bytes:
        self._advance("aarq")
        settings = self.settings
        initiate = dlms_xdlms.InitiateRequest(
            proposed_conformance=proposed_conformance(self.ciphered),
            client_max_receive_pdu_size=settings.max_pdu,
        )
        content: object = initiate
        mechanism = dlms_enums.AuthenticationMechanism.NONE
        value: bytes | None = None
        if settings.auth is AuthLevel.LLS:
            mechanism, value = dlms_enums.AuthenticationMechanism.LLS, settings.password
        elif settings.auth is AuthLevel.HLS_GMAC:
            assert self.ciphering is not None
            mechanism = dlms_enums.AuthenticationMechanism.HLS_GMAC
            self._challenge = os.urandom(settings.challenge_length)
            value = self._challenge
            counter = self._counter()
            sealed = self.ciphering.encrypt(initiate.to_bytes(), counter)
            content = dlms_xdlms.GlobalCipherInitiateRequest(
                security_control=SecurityControlField.from_bytes(sealed[:1]),
                invocation_counter=counter,
                ciphered_text=sealed[5:],
            )
        request = dlms_acse.ApplicationAssociationRequest(
            user_information=dlms_acse.UserInformation(content=content),
            system_title=settings.client_title if self.ciphered else None,
            authentication=mechanism if mechanism else None,
            ciphered=self.ciphered,
            authentication_value=value,
        )
        return bytes(request.to_bytes())

    def on_aare(self, apdu: bytes) -> None:
        """Read the AARE. Raises on a reject; afterwards ``state`` says whether HLS follows."""
        failure = xdlms.service_failure(apdu)
        if failure is not None:
            self._advance("failed")
            raise AssociationRejectedError(
                f"the meter answered the AARQ with {failure.kind}: {failure.text}",
                diagnostic=failure.text,
            )
        try:
            with translating("AARE"):
                aare = dlms_acse.ApplicationAssociationResponse.from_bytes(apdu)
        except DecodeError:
            self._advance("failed")
            raise
        result = aare.result
        diagnostic = aare.result_source_diagnostics
        diag_value = int(diagnostic.value) if diagnostic is not None else 0
        is_user = isinstance(diagnostic, dlms_enums.AcseServiceUserDiagnostics)
        diag_text = (
            _USER_DIAGNOSTICS.get(diag_value) if is_user else None
        ) or f"diagnostic {diag_value}"
        if result != dlms_enums.AssociationResult.ACCEPTED:
            self._advance("failed")
            if (
                is_user
                and diag_value == dlms_enums.AcseServiceUserDiagnostics.AUTHENTICATION_FAILED
            ):
                raise AuthenticationFailedError("the meter rejected our credentials")
            detail = self._user_information_error(aare)
            raise AssociationRejectedError(
                f"association rejected: {diag_text}{detail}", diagnostic=diag_text
            )
        self.server_title = aare.system_title
        content = aare.user_information.content if aare.user_information else None
        if isinstance(content, dlms_xdlms.GlobalCipherInitiateResponse):
            if self.ciphering is None:
                raise DecodeError("the meter ciphered the AARE of an unciphered association")
            self.ciphering.server_title = self.server_title
            sealed = content.security_control.to_bytes() + content.invocation_counter.to_bytes(
                4, "big"
            )
            plain = self.ciphering.decrypt(sealed + content.ciphered_text, self.server_title)
            with translating("AARE"):
                content = dlms_xdlms.InitiateResponse.from_bytes(plain)
        if isinstance(content, dlms_xdlms.InitiateResponse):
            pdu = content.server_max_receive_pdu_size
            if 0 < pdu < MIN_SERVER_PDU:  # 1..11 are reserved: the meter's fault, not ours
                self._advance("failed")
                raise DecodeError(
                    f"the meter's max receive PDU size {pdu} is below the minimum of "
                    f"{MIN_SERVER_PDU}"
                )
            self.conformance = content.negotiated_conformance
            self.server_max_pdu = pdu or 0xFFFF
        elif self.ciphering is not None and self.server_title is None:
            raise DecodeError("the AARE lacks the meter's system title")
        if self.settings.auth is AuthLevel.HLS_GMAC:
            if not aare.authentication_value:
                self._advance("failed")
                raise AuthenticationFailedError("the meter sent no HLS challenge")
            if self.ciphering is not None:
                self.ciphering.server_title = self.server_title
            self._server_challenge = aare.authentication_value
            self._advance("hls")
        else:
            self._advance("accepted")

    @staticmethod
    def _user_information_error(aare: dlms_acse.ApplicationAssociationResponse) -> str:
        content = aare.user_information.content if aare.user_information else None
        if isinstance(content, dlms_xdlms.ConfirmedServiceError):
            return f" ({content.error!r})"
        return ""

    # --- HLS passes 3 and 4 ----------------------------------------------------------------
    def hls_request(self, invoke: int) -> bytes:
        """Pass 3: prove we know the keys by answering the meter's challenge."""
        self._advance("hls_reply")
        assert self.ciphering is not None
        proof = self.ciphering.gmac(
            self.settings.client_title, self._counter(), self._server_challenge
        )
        method = xdlms.MethodRef(ASSOCIATION_LN, CURRENT_ASSOCIATION, REPLY_TO_HLS)
        return self.wrap(xdlms.action_request(invoke, method, axdr.octet_string(proof)))

    def on_hls_response(self, data: bytes, invoke: int) -> None:
        """Pass 4: check the meter's proof that it knows the keys."""
        try:
            apdu = self.unwrap(data)
            failure = xdlms.service_failure(apdu)
            if failure is not None:
                raise AuthenticationFailedError(f"the meter refused our HLS proof: {failure.text}")
            status, result = xdlms.parse_action_response(apdu, invoke)
            if status != 0 or result is None or result.data is None:
                raise AuthenticationFailedError(
                    f"the meter refused our HLS proof (result {status})"
                )
            proof = axdr.decode(result.data)
            assert self.ciphering is not None
            if not isinstance(proof, bytes) or not self.ciphering.check_gmac(
                proof, self._challenge
            ):
                raise AuthenticationFailedError("the meter's HLS proof does not verify")
        except BaseException:
            self._advance("failed")
            raise
        self._advance("accepted")

    # --- ciphering of data APDUs ------------------------------------------------------------
    def wrap(self, apdu: bytes) -> bytes:
        if self.ciphering is None:
            return apdu
        return self.ciphering.protect(apdu, self._counter())

    def unwrap(self, data: bytes) -> bytes:
        if self.ciphering is None:
            return data
        if xdlms.service_failure(data) is not None:
            return data  # exception-response is sent in clear
        return self.ciphering.unprotect(data)

    # --- release ----------------------------------------------------------------------------
    def rlrq(self) -> bytes:
        self._advance("rlrq")
        if self.ciphering is None:
            return b"\x62\x03\x80\x01\x00"  # RLRQ, reason normal
        initiate = dlms_xdlms.InitiateRequest(
            proposed_conformance=proposed_conformance(True),
            client_max_receive_pdu_size=self.settings.max_pdu,
        )
        counter = self._counter()
        sealed = self.ciphering.encrypt(initiate.to_bytes(), counter)
        content = dlms_xdlms.GlobalCipherInitiateRequest(
            security_control=SecurityControlField.from_bytes(sealed[:1]),
            invocation_counter=counter,
            ciphered_text=sealed[5:],
        )
        request = dlms_acse.ReleaseRequest(
            reason=dlms_enums.ReleaseRequestReason.NORMAL,
            user_information=dlms_acse.UserInformation(content=content),
        )
        return bytes(request.to_bytes())

    def on_rlre(self, apdu: bytes | None) -> bool:
        """Take the RLRE, or its absence. Release is best-effort: never raises; returns
        whether the answer was a well-formed RLRE."""
        self._advance("released")
        if not apdu or apdu[0] != 0x63:
            return False
        try:
            dlms_acse.ReleaseResponse.from_bytes(apdu)
        except Exception:  # a malformed RLRE (dlms-cosem raises a bare ValueError)
            return False
        return True

    def abandon(self) -> None:
        if self.state is AssociationState.READY:
            self._advance("abandon")
