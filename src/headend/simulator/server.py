"""A simulated meter's COSEM server, sans-IO: a request APDU in, the response APDU out.

``LogicalDevice`` is one meter: its objects, its state between associations and its invocation
counters. ``AssociationSession`` is one client link; transports (TCP wrapper, HDLC, serial) feed
it whole APDUs and send back what ``handle`` returns (``None``: the meter stays silent).

Association states form a transition table; an APDU that the current state does not accept is
answered with an exception-response, never raised::

    idle --AARQ accepted (none, LLS)--> associated --RLRQ--> idle
    idle --AARQ accepted (HLS)--> pending --reply_to_HLS ok--> associated
                                          --reply_to_HLS bad--> idle
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from hmac import compare_digest

from headend.domain.enums import AuthLevel
from headend.domain.obis import Obis
from headend.profiles.model import DeviceProfile
from headend.simulator import apdus, cosem
from headend.simulator.association import (
    AARQ_TAG,
    RLRQ_TAG,
    SUITE0_AUTHENTICATED,
    Diagnostic,
    GloInitiate,
    Mechanism,
    SecurityError,
    ServerSecurity,
    aare,
    glo_initiate_response,
    initiate_response,
    intersect,
    parse_aarq,
    parse_user_information,
    rlre,
    server_conformance,
)
from headend.simulator.cosem import DataError
from headend.simulator.datasource import MeterDataSource
from headend.simulator.objects import Context, CosemObject, MeterState, Result
from headend.simulator.profile_generic import build_objects
from headend.simulator.spec import FaultKind, MeterSpec, Quirk
from headend.simulator.xdlms_services import (
    DECIPHERING,
    INVOCATION_COUNTER,
    NOT_ALLOWED,
    NOT_SUPPORTED,
    OPERATION_NOT_POSSIBLE,
    OTHER,
    UNKNOWN,
    ServiceHost,
    serve_request,
)

_MECHANISM = {
    AuthLevel.NONE: Mechanism.NONE,
    AuthLevel.LLS: Mechanism.LLS,
    AuthLevel.HLS_GMAC: Mechanism.HLS_GMAC,
}


def _key(hex_text: str | None) -> bytes:
    return bytes.fromhex(hex_text) if hex_text else b""


class LogicalDevice:
    """One meter's COSEM server: objects, state between associations, invocation counters."""

    def __init__(
        self,
        spec: MeterSpec,
        data: MeterDataSource,
        profile: DeviceProfile,
        now: Callable[[], datetime],
    ) -> None:
        self.spec = spec
        self.data = data
        self.profile = profile
        self.now = now
        self.state = MeterState()
        missing = {Obis.parse(text) for text in spec.missing_objects}
        self.objects = [obj for obj in build_objects(profile) if obj.obis not in missing]
        self._by_obis: dict[Obis, CosemObject] = {obj.obis: obj for obj in self.objects}
        self.security = ServerSecurity(
            system_title=bytes.fromhex(spec.system_title),
            encryption_key=_key(spec.encryption_key),
            authentication_key=_key(spec.authentication_key),
        )
        # The meter's own counter starts at the Unix time the device came up, so a restarted
        # simulator does not reuse one; the client's last counter is what replays are checked
        # against (-1: none seen yet).
        self.meter_invocation_counter = max(1, int(now().timestamp()))
        self.client_invocation_counter = -1

    def new_association(self) -> AssociationSession:
        return AssociationSession(self)

    def find(self, obis: Obis) -> CosemObject | None:
        return self._by_obis.get(obis)

    def context(self, association_status: int) -> Context:
        return Context(
            now=self.now(),
            data=self.data,
            spec=self.spec,
            profile=self.profile,
            state=self.state,
            association_status=association_status,
            objects=self.objects,
        )

    @property
    def rejects_all(self) -> bool:
        return self.spec.fault(FaultKind.REJECT) is not None

    @property
    def counts_backwards(self) -> bool:
        return self.spec.fault(FaultKind.WRONG_IC) is not None

    @property
    def uses_hls(self) -> bool:
        return self.spec.auth is AuthLevel.HLS_GMAC


class Phase(Enum):
    IDLE = "idle"
    PENDING = "pending"  # HLS: waiting for the client's reply_to_HLS_authentication
    ASSOCIATED = "associated"


# event -> next phase; an event not listed for a phase is a bug, not a client's mistake
_TRANSITIONS: dict[Phase, dict[str, Phase]] = {
    Phase.IDLE: {
        "accepted": Phase.ASSOCIATED,
        "accepted_hls": Phase.PENDING,
        "released": Phase.IDLE,
    },
    Phase.PENDING: {
        "hls_verified": Phase.ASSOCIATED,
        "hls_failed": Phase.IDLE,
        "released": Phase.IDLE,
    },
    Phase.ASSOCIATED: {"released": Phase.IDLE},
}
_STATUS = {Phase.IDLE: 0, Phase.PENDING: 1, Phase.ASSOCIATED: 2}


class AssociationSession(ServiceHost):
    """One client link to a ``LogicalDevice``: ``handle`` takes a request APDU and returns the
    response APDU (``None`` when the meter does not answer)."""

    def __init__(self, device: LogicalDevice) -> None:
        self.device = device
        self.released = False
        self._reset()

    def _reset(self) -> None:
        self.phase = Phase.IDLE
        self.negotiated_max_pdu = self.device.profile.quirks.max_pdu_size
        self.long_get = None
        self.conformance_allows_list = False
        self.conformance_allows_blocks = False
        self.ciphered = False
        self.client_title: bytes | None = None
        self._client_challenge = b""
        self._server_challenge = b""
        self._first_counter: int | None = None

    def _move(self, event: str) -> None:
        self.phase = _TRANSITIONS[self.phase][event]

    def status(self) -> int:
        return _STATUS[self.phase]

    def handle(self, apdu: bytes) -> bytes | None:
        if not apdu:
            return None
        try:
            if apdu[0] == AARQ_TAG:
                return self._associate(apdu)
            if apdu[0] == RLRQ_TAG:
                return self._release(apdu)
            if self.phase is Phase.IDLE:
                return apdus.exception_response(NOT_ALLOWED, OPERATION_NOT_POSSIBLE)
            if apdu[0] == apdus.GENERAL_GLO_CIPHER or apdu[0] in apdus.GLO_RESPONSE_TAG:
                return self._ciphered(apdu)
            if self.ciphered:  # a secured association takes ciphered APDUs only
                return apdus.exception_response(NOT_ALLOWED, OPERATION_NOT_POSSIBLE)
            return self._plain(apdu)
        except DataError:
            return apdus.exception_response(NOT_ALLOWED, OTHER)

    # --- xDLMS --------------------------------------------------------------------------------

    def _plain(self, apdu: bytes) -> bytes:
        if apdu[0] not in (apdus.GET_REQUEST, apdus.SET_REQUEST, apdus.ACTION_REQUEST):
            return apdus.exception_response(UNKNOWN, NOT_SUPPORTED)
        request = apdus.parse_request(apdu)
        if self.phase is Phase.PENDING and not (
            isinstance(request, apdus.ActionNormal) and self._is_hls_reply(request.method)
        ):
            return apdus.exception_response(NOT_ALLOWED, OPERATION_NOT_POSSIBLE)
        return serve_request(self, request)

    def _is_hls_reply(self, method: apdus.Descriptor) -> bool:
        return (method.class_id, method.obis, method.index) == (
            15,
            self.device.profile.association.obis,
            1,
        )

    def _ciphered(self, apdu: bytes) -> bytes:
        if not self.ciphered:
            return apdus.exception_response(NOT_ALLOWED, OPERATION_NOT_POSSIBLE)
        request = apdus.Ciphered.from_bytes(apdu)
        title = request.system_title or self.client_title or b""
        counter = request.invocation_counter
        try:
            plain = self.device.security.decrypt(
                title, request.security_control, counter, request.ciphertext
            )
        except SecurityError:
            return apdus.exception_response(NOT_ALLOWED, DECIPHERING)
        stale = self._stale_counter(counter)
        if stale is not None:
            return stale
        answer = self._plain(plain)
        if answer[0] == apdus.EXCEPTION_RESPONSE:
            return answer
        general = request.tag == apdus.GENERAL_GLO_CIPHER
        tag = apdus.GENERAL_GLO_CIPHER if general else apdus.GLO_RESPONSE_TAG[request.tag]
        own = self._next_counter()
        return apdus.Ciphered(
            tag=tag,
            system_title=self.device.security.system_title if general else None,
            security_control=0x30,
            invocation_counter=own,
            ciphertext=self.device.security.encrypt(own, answer),
        ).to_bytes()

    def _stale_counter(self, counter: int) -> bytes | None:
        """An exception-response if ``counter`` is not above the last one the meter took."""
        last = self.device.client_invocation_counter
        if counter <= last:
            return apdus.exception_response(NOT_ALLOWED, INVOCATION_COUNTER, last + 1)
        self.device.client_invocation_counter = counter
        return None

    def _next_counter(self) -> int:
        """The meter's invocation counter for its next ciphered APDU. A meter with the
        ``wrong_ic`` fault reuses a counter below the first one of the association."""
        if self.device.counts_backwards and self._first_counter is not None:
            return max(0, self._first_counter - 1)
        self.device.meter_invocation_counter += 1
        counter = self.device.meter_invocation_counter
        if self._first_counter is None:
            self._first_counter = counter
        return counter

    def reply_to_hls(self, request: apdus.ActionNormal) -> bytes:
        """HLS pass 3 (the client's proof) and pass 4 (the meter's)."""
        if self.phase is not Phase.PENDING:
            return apdus.action_response(request.invoke, Result.READ_WRITE_DENIED)
        proof = request.parameters
        data = proof.content if proof is not None and proof.tag == cosem.OCTET_STRING else b""
        security = self.device.security
        valid = isinstance(data, bytes) and len(data) == 17 and data[0] == SUITE0_AUTHENTICATED
        if valid:
            assert isinstance(data, bytes)
            counter = int.from_bytes(data[1:5], "big")
            expected = security.gmac(
                self.client_title or b"", data[0], counter, self._server_challenge
            )
            valid = compare_digest(expected, data[5:])
        if not valid:
            self._move("hls_failed")
            return apdus.action_response(request.invoke, Result.READ_WRITE_DENIED)
        own = self._next_counter()
        answer = security.gmac(
            security.system_title, SUITE0_AUTHENTICATED, own, self._client_challenge
        )
        self._move("hls_verified")
        reply = bytes((SUITE0_AUTHENTICATED,)) + own.to_bytes(4, "big") + answer
        return apdus.action_response(request.invoke, Result.SUCCESS, cosem.octet_string(reply))

    # --- ACSE ---------------------------------------------------------------------------------

    def _associate(self, apdu: bytes) -> bytes:
        self._reset()
        self.released = False
        device = self.device
        quirks = device.profile.quirks
        try:
            request = parse_aarq(apdu)
        except DataError:
            return aare(
                accepted=False, diagnostic=Diagnostic.NO_REASON_GIVEN, ciphered_context=False
            )
        context = request.ciphered_context
        meter_title = device.security.system_title if context else None

        def reject(diagnostic: Diagnostic, user_information: bytes | None = None) -> bytes:
            return aare(
                accepted=False,
                diagnostic=diagnostic,
                ciphered_context=context,
                system_title=meter_title,
                user_information=user_information,
            )

        expected = _MECHANISM[device.spec.auth]
        if device.rejects_all:
            return reject(Diagnostic.AUTHENTICATION_FAILED)
        if request.mechanism is not expected:
            if request.mechanism is Mechanism.NONE:
                return reject(Diagnostic.AUTHENTICATION_REQUIRED)
            return reject(Diagnostic.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNIZED)
        if context != device.uses_hls:
            return reject(Diagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED)
        if expected is Mechanism.LLS:
            secret = (device.spec.password or "").encode()
            if not compare_digest(request.authentication_value or b"", secret):
                return reject(Diagnostic.AUTHENTICATION_FAILED)
        challenge = request.authentication_value or b""
        if expected is Mechanism.HLS_GMAC and not 8 <= len(challenge) <= 64:
            return reject(Diagnostic.AUTHENTICATION_FAILED)
        try:
            info = parse_user_information(request.user_information)
        except DataError:
            return reject(Diagnostic.NO_REASON_GIVEN)
        title = request.calling_title or b""
        if isinstance(info, GloInitiate):
            if not context or len(title) != 8:
                return reject(Diagnostic.CALLING_AP_TITLE_NOT_RECOGNIZED)
            try:
                plain = device.security.decrypt(
                    title, info.security_control, info.invocation_counter, info.ciphertext
                )
            except SecurityError:
                return reject(Diagnostic.AUTHENTICATION_FAILED)
            stale = self._stale_counter(info.invocation_counter)
            if stale is not None:
                return stale
            initiate = apdus.InitiateRequest.from_bytes(plain)
        else:
            initiate = info
        if initiate.dlms_version < 6:
            return reject(Diagnostic.NO_REASON_GIVEN, apdus.confirmed_service_error(1, 6, 1))
        if initiate.client_max_receive_pdu_size < 32:
            return reject(Diagnostic.NO_REASON_GIVEN, apdus.confirmed_service_error(1, 6, 3))

        offered = server_conformance(quirks.supports_get_with_list, context)
        conformance = intersect(initiate.proposed_conformance, offered)
        self.negotiated_max_pdu = min(initiate.client_max_receive_pdu_size, quirks.max_pdu_size)
        self.conformance_allows_list = bool(conformance.multiple_references)
        self.conformance_allows_blocks = bool(conformance.block_transfer_with_get_or_read)
        self.ciphered = context
        self.client_title = title or None
        user_information = initiate_response(conformance, quirks.max_pdu_size)
        if isinstance(info, GloInitiate):
            user_information = glo_initiate_response(
                device.security, self._next_counter(), user_information
            )
        hls = expected is Mechanism.HLS_GMAC
        if hls:
            self._client_challenge = challenge
            self._server_challenge = secrets.token_bytes(16)
        self._move("accepted_hls" if hls else "accepted")
        return aare(
            accepted=True,
            diagnostic=Diagnostic.AUTHENTICATION_REQUIRED if hls else Diagnostic.NULL,
            ciphered_context=context,
            mechanism=expected,
            system_title=meter_title,
            challenge=self._server_challenge if hls else None,
            user_information=user_information,
        )

    def _release(self, apdu: bytes) -> bytes | None:
        if not self.device.profile.quirks.supports_release:
            return None
        self._move("released")
        self.released = True
        self.long_get = None
        if self.device.spec.has(Quirk.RELEASE_NEVER_ANSWERED):
            return None
        answer = rlre()
        if self.device.spec.has(Quirk.RLRE_WRONG_LENGTH):
            return answer[:1] + bytes((answer[1] + 1,)) + answer[2:]
        return answer
