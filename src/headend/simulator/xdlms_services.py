"""GET, SET and ACTION within an established association, with block transfer.

A response longer than the negotiated PDU size (the smaller of the client's proposed maximum
receive size and the meter's own) is sent as get-response-with-datablock: the encoded result is
cut into blocks numbered from 1, each sent when the client asks for the next with the number of
the last block it received.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from headend.simulator import apdus, cosem
from headend.simulator.objects import AccessDenied, CosemObject, Result
from headend.simulator.spec import PDU_OVERRUN, Quirk

if TYPE_CHECKING:
    from headend.simulator.server import LogicalDevice

# exception-response codes
NOT_ALLOWED, UNKNOWN = 1, 2
OPERATION_NOT_POSSIBLE, NOT_SUPPORTED, OTHER, DECIPHERING, INVOCATION_COUNTER = 1, 2, 3, 5, 6
NO_LONG_GET_IN_PROGRESS, DATA_BLOCK_NUMBER_INVALID = 16, 19
# octets a general-glo-cipher adds to an APDU: tag, title, length, SC, IC, GCM tag
CIPHER_OVERHEAD = 1 + 9 + 3 + 5 + 12
BLOCK_HEADER = 12  # C4 02 invoke last block-number(4) choice length(<=3)


@dataclass
class LongGet:
    """A GET response being sent in blocks."""

    invoke: int
    raw: bytes
    block_size: int
    sent: int = 0

    def next_block(self) -> tuple[bytes, bool]:
        start = self.sent * self.block_size
        self.sent += 1
        chunk = self.raw[start : start + self.block_size]
        return chunk, start + self.block_size >= len(self.raw)


def serve_request(session: ServiceHost, request: apdus.Request) -> bytes:
    """Answer one plain xDLMS request within an established association."""
    if isinstance(request, apdus.GetNext):
        return session.next_block(request)
    session.long_get = None
    if isinstance(request, apdus.GetNormal):
        try:
            data = session.read(request.attribute, request.selection)
        except AccessDenied as exc:
            return apdus.get_response_error(session.error_invoke(request.invoke), exc.result)
        whole = apdus.get_response_normal(request.invoke, data)
        return session.fit(request.invoke, whole, data)
    if isinstance(request, apdus.GetWithList):
        if not session.conformance_allows_list:
            return apdus.exception_response(NOT_ALLOWED, NOT_SUPPORTED)
        results: list[bytes | int] = []
        for attribute, selection in request.items:
            try:
                results.append(session.read(attribute, selection))
            except AccessDenied as exc:
                results.append(int(exc.result))
        declared = len(results)
        if session.device.spec.has(Quirk.SHORT_LIST_AFTER_FAILURE):
            failed = [n for n, item in enumerate(results) if isinstance(item, int)]
            results = results[: failed[0]] if failed else results
        whole = apdus.get_response_with_list(request.invoke, results, declared)
        return session.fit(request.invoke, whole, apdus.encode_result_list(results, declared))
    if isinstance(request, apdus.SetNormal):
        try:
            session.write(request.attribute, request.selection, request.value)
        except AccessDenied as exc:
            return apdus.set_response(request.invoke, exc.result)
        return apdus.set_response(request.invoke, Result.SUCCESS)
    if isinstance(request, apdus.ActionNormal):
        return session.act(request)
    return apdus.exception_response(NOT_ALLOWED, NOT_SUPPORTED)


class ServiceHost:
    """The GET/SET/ACTION half of an association (the ACSE half is ``AssociationSession``)."""

    device: LogicalDevice
    negotiated_max_pdu: int
    long_get: LongGet | None
    conformance_allows_list: bool
    conformance_allows_blocks: bool
    ciphered: bool

    def status(self) -> int:
        raise NotImplementedError

    def reply_to_hls(self, request: apdus.ActionNormal) -> bytes:
        raise NotImplementedError

    def error_invoke(self, invoke: int) -> int:
        """The invoke id of an error answer: another one for a meter with that quirk."""
        if not self.device.spec.has(Quirk.WRONG_INVOKE_ID_ON_ERROR):
            return invoke
        return (invoke & 0xF0) | (2 if invoke & 0x0F == 1 else 1)

    def _object(self, descriptor: apdus.Descriptor) -> CosemObject:
        obj = self.device.find(descriptor.obis)
        if obj is None:
            if self.device.spec.has(Quirk.HARDWARE_FAULT_FOR_MISSING):
                raise AccessDenied(Result.HARDWARE_FAULT)
            raise AccessDenied(Result.OBJECT_UNDEFINED)
        if obj.class_id != descriptor.class_id:
            raise AccessDenied(Result.OBJECT_CLASS_INCONSISTENT)
        return obj

    def read(self, descriptor: apdus.Descriptor, selection: apdus.Selection) -> bytes:
        obj = self._object(descriptor)
        return obj.get(descriptor.index, selection, self.device.context(self.status()))

    def write(
        self, descriptor: apdus.Descriptor, selection: apdus.Selection, value: cosem.Value
    ) -> None:
        obj = self._object(descriptor)
        if selection is not None:
            raise AccessDenied(Result.OTHER_REASON)
        obj.set(descriptor.index, value, self.device.context(self.status()))

    def act(self, request: apdus.ActionNormal) -> bytes:
        method = request.method
        if (method.class_id, method.obis, method.index) == (
            15,
            self.device.profile.association.obis,
            1,
        ):
            return self.reply_to_hls(request)
        try:
            obj = self._object(method)
            data = obj.action(method.index, request.parameters, self.device.context(self.status()))
        except AccessDenied as exc:
            return apdus.action_response(request.invoke, exc.result)
        return apdus.action_response(request.invoke, Result.SUCCESS, data)

    def fit(self, invoke: int, whole: bytes, raw: bytes) -> bytes:
        """``whole`` if it fits the negotiated PDU size, else the first block of ``raw``."""
        room = self.negotiated_max_pdu - (CIPHER_OVERHEAD if self.ciphered else 0)
        if self.device.spec.has(Quirk.PDU_IGNORED):
            room += PDU_OVERRUN  # firmware that counts the PDU size without its own headers
        if len(whole) <= room:
            return whole
        if not self.conformance_allows_blocks or room <= BLOCK_HEADER:
            return apdus.get_response_error(invoke, Result.OTHER_REASON)
        self.long_get = LongGet(invoke, raw, room - BLOCK_HEADER)
        return self._send_block()

    def _send_block(self) -> bytes:
        assert self.long_get is not None
        transfer = self.long_get
        chunk, last = transfer.next_block()
        if last:
            self.long_get = None
        return apdus.get_response_block(transfer.invoke, last, transfer.sent, chunk)

    def next_block(self, request: apdus.GetNext) -> bytes:
        transfer = self.long_get
        if transfer is None:
            return apdus.get_response_block_error(
                request.invoke, request.block_number, NO_LONG_GET_IN_PROGRESS
            )
        if request.block_number != transfer.sent:
            self.long_get = None
            return apdus.get_response_block_error(
                request.invoke, request.block_number, DATA_BLOCK_NUMBER_INVALID
            )
        return self._send_block()
