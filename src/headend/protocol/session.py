"""One meter session: ``async with MeterSession(target) as session``.

Entering opens the transport (and the HDLC link) and associates; leaving releases the
association (best-effort, or not at all where the device profile says the model does not
support release) and closes the transport, whatever happened. GET (normal, block transfer,
with list), SET and ACTION return raw A-XDR data or raise a ``ProtocolError``.

A session is bounded whatever the meter does. In time: from ``open`` it runs under a budget
(``Timeouts.session``, narrowed by :meth:`MeterSession.limit_budget` to what a read needs) on
top of each step's timeout; at the deadline the step under way is cancelled and the session
ends as ``ResponseTimeoutError``, its transport closed by leaving the ``async with``. In bytes:
one block transfer gathers at most ``MeterTarget.max_transfer_bytes``, narrowed by
:meth:`MeterSession.expecting` to what was asked, and is refused before the next block is
asked for once it would run past that.

Meters are tolerated, not trusted to be conformant. A GET-with-list answer that is short,
malformed, carries another invoke id or fails as a whole costs one retry of its items one by
one, and the rest of the session reads one by one; an error answer carrying another invoke id
is taken as the answer to the one request outstanding. What the session learned this way is in
:attr:`MeterSession.learned`, by the names ``LIST_UNRELIABLE`` and ``WRONG_INVOKE_ON_ERROR``
(and, reading profile buffers, ``RANGE_ACCESS_REFUSED`` and ``ENTRY_ACCESS_REFUSED``). What
earlier sessions learned of the meter's model and firmware comes in with the target
(``MeterTarget.known_quirks``) and is acted on from the start: :meth:`MeterSession.knows`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from types import TracebackType

from headend.domain.enums import AuthLevel
from headend.protocol import xdlms
from headend.protocol.association import Association, AssociationState
from headend.protocol.errors import (
    AuthenticationFailedError,
    ClientStateError,
    ConfigurationError,
    DataAccessError,
    DecodeError,
    InvocationCounterError,
    ProtocolError,
    ResponseTimeoutError,
    data_access_error,
    translating,
)
from headend.protocol.security import CounterLease, InvocationCounterStore
from headend.protocol.streams import Traffic
from headend.protocol.target import MeterTarget, build_transport
from headend.protocol.transports import Transport

MAX_BLOCKS = 10_000
# what a session learns about a meter that does not follow the standard, by name
LIST_UNRELIABLE = "get_with_list_unreliable"
WRONG_INVOKE_ON_ERROR = "wrong_invoke_id_on_error"
RANGE_ACCESS_REFUSED = "range_access_refused"  # profile buffers refuse selector 1
ENTRY_ACCESS_REFUSED = "entry_access_refused"  # profile buffers refuse selector 2
LEARNABLE = frozenset(
    {LIST_UNRELIABLE, WRONG_INVOKE_ON_ERROR, RANGE_ACCESS_REFUSED, ENTRY_ACCESS_REFUSED}
)
# a step the session budget need not bound: its own timeout fires first
_NO_BOUND: contextlib.nullcontext[None] = contextlib.nullcontext()


def _failure_error(failure: xdlms.ServiceFailure, what: str) -> ProtocolError:
    if failure.kind == "exception" and failure.code == 6:
        return InvocationCounterError(f"{what}: the meter rejected our invocation counter")
    if failure.kind == "exception" and failure.code == 5:
        return AuthenticationFailedError(f"{what}: the meter could not decipher our request")
    return DataAccessError(f"{what}: {failure.kind} {failure.text}")


class MeterSession:
    def __init__(
        self,
        target: MeterTarget,
        *,
        counters: InvocationCounterStore | None = None,
        release: bool = True,
        transport: Transport | None = None,
    ) -> None:
        self.target = target
        self.budget_s = target.timeouts.session
        # the longest one request's exchange may take: the transports bound it by this
        self._step_s = target.timeouts.response
        self._opened_at: float | None = None
        self._deadline: float | None = None
        self._transfer_limit = target.max_transfer_bytes
        self.release_supported = release
        self.traffic = Traffic()
        self._transport = transport or build_transport(target, self.traffic)
        lease = CounterLease(counters, target.meter_id) if counters is not None else None
        if target.auth is AuthLevel.HLS_GMAC and lease is None:
            raise ConfigurationError("HLS-GMAC needs an invocation counter store")
        self.association = Association(target.association_settings(), lease)
        self._invoke = 0
        self._open = False
        self.learned: set[str] = set()  # quirks of this meter found in this session
        # quirks earlier sessions found on this model and firmware, acted on from the start
        self.known: frozenset[str] = target.known_quirks & LEARNABLE
        self.released_cleanly: bool | None = None
        # the longest answer APDU the meter sent, and how many answers it sent in blocks: by
        # these a survey sees whether the meter keeps to the PDU size it took
        self.largest_answer = 0
        self.block_transfers = 0
        # the firmware that keys this session's cached definitions: the target's (as last
        # stored) until the meter reports which it runs (``registers.read_objects``)
        self.firmware: str = target.firmware

    # --- lifecycle ----------------------------------------------------------------------------
    async def __aenter__(self) -> MeterSession:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close(release=exc is None or isinstance(exc, DataAccessError))

    async def open(self) -> None:
        self._opened_at = asyncio.get_running_loop().time()
        self._deadline = self._opened_at + self.budget_s
        try:
            async with self._within_budget("connect"):
                with translating("connect"):
                    await self._transport.open()
                self._open = True
                await self._associate()
        except BaseException:
            await self._close_transport()
            raise

    async def _associate(self) -> None:
        association = self.association
        with translating("association"):
            aare = await self._transport.exchange(association.aarq())
        with translating("AARE"):
            association.on_aare(aare)
        if association.state is AssociationState.HLS_PENDING:
            invoke = self._next_invoke()
            with translating("HLS"):
                answer = await self._transport.exchange(association.hls_request(invoke))
                association.on_hls_response(answer, invoke)

    async def close(self, *, release: bool = True) -> None:
        """Release (best-effort) and close the transport; never raises."""
        try:
            if (
                release
                and self.release_supported
                and self._open
                and self.association.state is AssociationState.READY
            ):
                answer: bytes | None = None
                try:
                    async with asyncio.timeout(self.target.timeouts.close):
                        answer = await self._transport.exchange(self.association.rlrq())
                except (ProtocolError, TimeoutError, OSError):
                    answer = None
                self.released_cleanly = self.association.on_rlre(answer)
            else:
                self.association.abandon()
        except Exception:
            self.released_cleanly = False
        finally:
            await self._close_transport()

    async def _close_transport(self) -> None:
        self._open = False
        with contextlib.suppress(Exception):
            await self._transport.close()

    # --- bounds -------------------------------------------------------------------------------
    def limit_budget(self, seconds: float) -> None:
        """End the session at most ``seconds`` after it opened (a budget is only narrowed)."""
        self.budget_s = min(self.budget_s, seconds)
        if self._opened_at is not None:
            self._deadline = self._opened_at + self.budget_s

    @contextlib.contextmanager
    def expecting(self, max_bytes: int) -> Iterator[None]:
        """Within this block, one block transfer gathers at most ``max_bytes`` (never more
        than the target's ceiling)."""
        outer = self._transfer_limit
        self._transfer_limit = min(outer, max_bytes)
        try:
            yield
        finally:
            self._transfer_limit = outer

    @contextlib.asynccontextmanager
    async def _within_budget(self, what: str) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout_at(self._deadline):
                yield
        except TimeoutError as exc:
            raise ResponseTimeoutError(
                f"{what}: the session ran past its budget of {self.budget_s:g}s"
            ) from exc

    def knows(self, quirk: str) -> bool:
        """Whether the meter has ``quirk``: known before this session, or learned in it."""
        return quirk in self.known or quirk in self.learned

    # --- services -----------------------------------------------------------------------------
    def _next_invoke(self) -> int:
        self._invoke = self._invoke % 15 + 1
        return 0xC0 | self._invoke

    async def _request(self, apdu: bytes, what: str) -> bytes:
        if self.association.state is not AssociationState.READY:
            raise ClientStateError(f"{what}: the association is not ready")
        if len(apdu) > self.association.server_max_pdu:
            raise ClientStateError(f"{what}: request of {len(apdu)} bytes exceeds the meter's PDU")
        deadline = self._deadline
        bound: contextlib.AbstractAsyncContextManager[None]
        if deadline is not None and deadline - asyncio.get_running_loop().time() <= self._step_s:
            bound = self._within_budget(what)  # the budget ends first: bound the step by it
        else:
            bound = _NO_BOUND  # the step's own timeout fires first, if anything does
        async with bound:
            with translating(what):
                wire = await self._transport.exchange(self.association.wrap(apdu))
                self.largest_answer = max(self.largest_answer, len(wire))
                answer = self.association.unwrap(wire)
        failure = xdlms.service_failure(answer)
        if failure is not None:
            raise _failure_error(failure, what)
        return answer

    async def _blocks(self, first: xdlms.Block, invoke: int, what: str) -> bytes:
        self.block_transfers += 1
        raw = bytearray()
        block = first
        for _ in range(MAX_BLOCKS):
            if block.error is not None:
                raise data_access_error(block.error, what)
            if len(raw) + len(block.raw) > self._transfer_limit:
                raise DecodeError(
                    f"{what}: the block transfer runs past {self._transfer_limit} bytes, "
                    "more than was asked for"
                )
            raw += block.raw
            if block.last:
                return bytes(raw)
            answer = await self._request(xdlms.get_request_next(invoke, block.number), what)
            with translating(what):
                nxt = xdlms.parse_get_response(answer, invoke)
            if not isinstance(nxt, xdlms.Block) or nxt.number != block.number + 1:
                raise DecodeError(f"{what}: block transfer out of order")
            block = nxt
        raise DecodeError(f"{what}: more than {MAX_BLOCKS} blocks")

    async def get(self, ref: xdlms.AttributeRef, access: bytes | None = None) -> bytes:
        """The A-XDR encoded value of one attribute."""
        what = f"GET {ref.obis} attribute {ref.attribute}"
        invoke = self._next_invoke()
        answer = await self._request(xdlms.get_request(invoke, ref, access), what)
        result = self._parse_get(answer, invoke, what)
        if isinstance(result, xdlms.Block):
            return await self._blocks(result, invoke, what)
        if isinstance(result, xdlms.Result):
            if result.error is not None:
                raise data_access_error(result.error, what)
            assert result.data is not None
            return result.data
        raise DecodeError(f"{what}: the meter answered with a list")

    def _parse_get(
        self, answer: bytes, invoke: int, what: str
    ) -> xdlms.Result | xdlms.Block | list[xdlms.Result]:
        with translating(what):
            result = xdlms.parse_get_response(answer, None)
        answered = answer[2] & 0x0F  # parse_get_response checked there are three bytes
        if answered == invoke & 0x0F:
            return result
        # Some meters answer errors with another invoke id. Requests are sent one at a time
        # and a session whose answer is late ends (response timeout), so an error answer (a
        # GET response carrying only a data-access-result) can only be the answer to the one
        # request outstanding. Nothing else is taken this way: a value, a block or a list
        # with another invoke id is refused.
        if isinstance(result, xdlms.Result) and result.error is not None:
            self.learned.add(WRONG_INVOKE_ON_ERROR)
            return result
        raise DecodeError(f"{what}: answer to invoke id {answered}, expected {invoke & 0x0F}")

    async def get_many(self, refs: list[xdlms.AttributeRef], batch: int = 10) -> list[xdlms.Result]:
        """Several attributes; by GET with list in batches when the meter allows it.

        A list answer the meter garbles (short, malformed, another invoke id) or refuses as a
        whole costs one retry of its items one by one, and from then on this session reads
        one by one (``LIST_UNRELIABLE`` is learned)."""
        if not refs:
            return []
        results: list[xdlms.Result] = []
        for start in range(0, len(refs), max(batch, 1)):
            chunk = refs[start : start + max(batch, 1)]
            if len(chunk) == 1 or not self._lists_allowed(batch):
                results.extend([await self._get_one(ref) for ref in chunk])
                continue
            try:
                results.extend(await self._get_list(chunk))
            except (DecodeError, DataAccessError):
                self.learned.add(LIST_UNRELIABLE)
                results.extend([await self._get_one(ref) for ref in chunk])
        return results

    def _lists_allowed(self, batch: int) -> bool:
        unreliable = self.knows(LIST_UNRELIABLE)
        return batch > 1 and self.association.supports_with_list and not unreliable

    async def _get_list(self, chunk: list[xdlms.AttributeRef]) -> list[xdlms.Result]:
        what = f"GET with list of {len(chunk)} from {chunk[0].obis}"
        invoke = self._next_invoke()
        request = xdlms.get_request_with_list(invoke, [(r, None) for r in chunk])
        answer = await self._request(request, what)
        parsed = self._parse_get(answer, invoke, what)
        if isinstance(parsed, xdlms.Block):
            raw = await self._blocks(parsed, invoke, what)
            with translating(what):
                parsed = xdlms.parse_result_list(raw, 0)
        if not isinstance(parsed, list) or len(parsed) != len(chunk):
            raise DecodeError(f"{what}: the answer does not have {len(chunk)} results")
        return parsed

    async def _get_one(self, ref: xdlms.AttributeRef) -> xdlms.Result:
        try:
            return xdlms.Result(data=await self.get(ref))
        except DataAccessError as exc:
            return xdlms.Result(error=exc.result if exc.result is not None else 250)

    async def set(self, ref: xdlms.AttributeRef, data: bytes) -> None:
        what = f"SET {ref.obis} attribute {ref.attribute}"
        invoke = self._next_invoke()
        answer = await self._request(xdlms.set_request(invoke, ref, data), what)
        with translating(what):
            result = xdlms.parse_set_response(answer, invoke)
        if result != 0:
            raise data_access_error(result, what)

    async def action(self, ref: xdlms.MethodRef, data: bytes | None = None) -> bytes | None:
        what = f"ACTION {ref.obis} method {ref.method}"
        invoke = self._next_invoke()
        answer = await self._request(xdlms.action_request(invoke, ref, data), what)
        with translating(what):
            status, result = xdlms.parse_action_response(answer, invoke)
        if status != 0:
            raise data_access_error(status, what)
        if result is not None and result.error is not None:
            raise data_access_error(result.error, what)
        return result.data if result is not None else None
