"""Each known pitfall of dlms-cosem 25.1.0 has a test here that would catch it in headend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from dlms_cosem import enumerations as dlms_enums
from dlms_cosem import time as dlms_time
from dlms_cosem.protocol import acse as dlms_acse
from dlms_cosem.protocol import xdlms as dlms_xdlms

from headend.domain.enums import AuthLevel, FailureCategory, Transport
from headend.domain.obis import Obis
from headend.domain.readings import Column
from headend.protocol import axdr, hdlc
from headend.protocol.association import Association, AssociationSettings, proposed_conformance
from headend.protocol.buffers import _times
from headend.protocol.cosem_time import INVERTED, TimePolicy, decode_datetime
from headend.protocol.errors import ProtocolError, SessionDroppedError
from headend.protocol.hdlc_link import HdlcLink
from headend.protocol.plan import ReadSpec
from headend.protocol.session import MeterSession
from headend.protocol.streams import ByteStream, TcpStream
from headend.protocol.target import MeterTarget
from headend.protocol.transports import HdlcTransport, Timeouts, WrapperTransport
from headend.protocol.xdlms import AttributeRef, entry_access
from tests.protocol.support import run

pytestmark = pytest.mark.timeout(30)


# --- a meter that closes the connection: no spin ----------------------------------------------


async def _server_that_closes(after_s: float) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        await asyncio.sleep(after_s)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_a_meter_closing_the_connection_ends_the_session_as_dropped_without_spinning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = 0
    tcp_read = TcpStream.read

    async def counted_read(self: TcpStream) -> bytes:
        nonlocal reads
        reads += 1
        return await tcp_read(self)

    monkeypatch.setattr(TcpStream, "read", counted_read)

    async def go() -> ProtocolError:
        server, port = await _server_that_closes(0.5)
        target = MeterTarget(
            "m", Transport.WRAPPER, "127.0.0.1", port, timeouts=Timeouts(response=5.0)
        )
        try:
            async with MeterSession(target):
                pass
        except ProtocolError as exc:
            error = exc
        finally:
            server.close()
            await server.wait_closed()
        return error

    error = run(go())
    assert isinstance(error, SessionDroppedError)
    assert error.category is FailureCategory.SESSION_DROPPED
    assert reads == 1, f"the client read {reads} times from a closed peer"


# --- HDLC frames read by length, sockets read in chunks ----------------------------------------


def _answer_ending_with_flag(link: HdlcLink) -> bytes:
    for n in range(10_000):
        frame = hdlc.information_frame(
            link.client,
            link.server,
            hdlc.LLC_RESPONSE + b"ok" + n.to_bytes(2, "big"),
            send_sequence=0,
            receive_sequence=1,
            final=True,
            segmented=False,
        ).to_bytes()
        if frame[-2] == 0x7E:
            return frame
    raise AssertionError("no frame found")


class CountingStream:
    """A ``ByteStream`` that counts the reads of the stream it wraps."""

    def __init__(self, inner: ByteStream) -> None:
        self.inner = inner
        self.reads = 0

    async def read(self) -> bytes:
        self.reads += 1
        return await self.inner.read()

    async def write(self, data: bytes) -> None:
        await self.inner.write(data)

    async def close(self) -> None:
        await self.inner.close()

    @property
    def is_closed(self) -> bool:
        return self.inner.is_closed


def test_an_hdlc_answer_whose_check_sequence_ends_in_0x7e_is_read_at_once_by_its_length() -> None:
    link = HdlcLink(16, 1, 17)
    answer = _answer_ending_with_flag(link)

    async def go() -> tuple[bytes, int]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(100)  # SNRM
            writer.write(hdlc.Frame(link.client, link.server, hdlc.UA).to_bytes())
            await reader.read(100)  # the request
            writer.write(answer)  # and nothing after it: a flag scan would wait forever
            await reader.read(100)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        streams: list[CountingStream] = []

        async def opener() -> ByteStream:
            streams.append(CountingStream(await TcpStream.connect("127.0.0.1", port, 2.0)))
            return streams[0]

        transport = HdlcTransport(opener, HdlcLink(16, 1, 17), Timeouts(response=3.0))
        try:
            await transport.open()
            before = streams[0].reads
            apdu = await transport.exchange(b"\xc0\x01")
            return apdu, streams[0].reads - before
        finally:
            await transport.close()
            server.close()
            await server.wait_closed()

    apdu, reads = run(go())
    assert apdu.startswith(b"ok")
    assert reads == 1


def test_a_long_wrapper_answer_is_read_in_chunks_not_byte_by_byte() -> None:
    payload = bytes(range(256)) * 160  # 40 kB

    async def go() -> tuple[bytes, int]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(100)
            writer.write(b"\x00\x01\x00\x01\x00\x10" + len(payload).to_bytes(2, "big") + payload)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        streams: list[CountingStream] = []

        async def opener() -> ByteStream:
            streams.append(CountingStream(await TcpStream.connect("127.0.0.1", port, 2.0)))
            return streams[0]

        transport = WrapperTransport(opener, 16, 1, Timeouts())
        try:
            await transport.open()
            return await transport.exchange(b"\xc0"), streams[0].reads
        finally:
            await transport.close()
            server.close()
            await server.wait_closed()

    apdu, reads = run(go())
    assert apdu == payload
    assert reads < 50, f"{reads} reads for {len(payload)} bytes"


# --- release is best-effort --------------------------------------------------------------------


def _aare_accepted() -> bytes:
    return bytes(
        dlms_acse.ApplicationAssociationResponse(
            result=dlms_enums.AssociationResult.ACCEPTED,
            result_source_diagnostics=dlms_enums.AcseServiceUserDiagnostics.NULL,
            user_information=dlms_acse.UserInformation(
                content=dlms_xdlms.InitiateResponse(
                    negotiated_conformance=proposed_conformance(False),
                    server_max_receive_pdu_size=512,
                )
            ),
        ).to_bytes()
    )


class ScriptedTransport:
    """A ``Transport`` answering each request with the next scripted answer."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.closed = False

    async def open(self) -> None:
        pass

    async def exchange(self, apdu: bytes) -> bytes:
        self.requests.append(apdu)
        return self.answers.pop(0)

    async def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("rlre", [b"\x63\x05\x80\x01", b"\x63", b"\x00\x01\x02"])
def test_a_malformed_release_response_does_not_fail_the_read(rlre: bytes) -> None:
    with pytest.raises((ValueError, IndexError)):  # what dlms-cosem does with it
        dlms_acse.ReleaseResponse.from_bytes(rlre)
    clock = b"\xc4\x01\xc1\x00" + axdr.octet_string(bytes.fromhex("07ea0b1b05100000ff800000"))
    transport = ScriptedTransport([_aare_accepted(), clock, rlre])

    async def go() -> bytes:
        async with MeterSession(MeterTarget("m"), transport=transport) as session:
            return await session.get(AttributeRef(8, Obis(0, 0, 1, 0, 0), 2))

    assert run(go()) == axdr.octet_string(bytes.fromhex("07ea0b1b05100000ff800000"))
    assert transport.closed
    assert transport.requests[-1][0] == 0x62  # the RLRQ went out


def test_release_is_skipped_where_the_model_does_not_support_it() -> None:
    transport = ScriptedTransport([_aare_accepted()])

    async def go() -> None:
        async with MeterSession(MeterTarget("m"), transport=transport, release=False):
            pass

    run(go())
    assert [r[0] for r in transport.requests] == [0x60]
    assert transport.closed


# --- date-times with deviation 0 or unspecified ------------------------------------------------

HANOI = TimePolicy(unspecified_zone="Asia/Ho_Chi_Minh")


def test_a_date_time_with_deviation_zero_is_utc_not_naive() -> None:
    raw = bytes.fromhex("07ea0b1b0510000000000000")
    assert dlms_time.datetime_from_bytes(raw)[0].tzinfo is None  # the library's reading
    got = decode_datetime(raw, HANOI)
    assert got.at == datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    assert got.deviation_min == 0 and not got.offset_assumed


def test_a_date_time_with_unspecified_deviation_is_local_time_of_the_profiles_zone() -> None:
    raw = bytes.fromhex("07ea0b1b0517000000800000")
    assert dlms_time.datetime_from_bytes(raw)[0].tzinfo is None
    got = decode_datetime(raw, HANOI)
    assert got.at == datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    assert got.offset_assumed and got.deviation_min is None


def test_the_deviation_sign_follows_the_profiles_convention() -> None:
    blue_book = bytes.fromhex("07ea0b1b0517000000fe5c00")  # -420: UTC+7 in the Blue Book
    assert decode_datetime(blue_book, HANOI).at.utcoffset() == timedelta(hours=7)
    inverted = bytes.fromhex("07ea0b1b051700000001a400")  # +420 in the other reading
    policy = TimePolicy(deviation_convention=INVERTED)
    assert decode_datetime(inverted, policy).at.utcoffset() == timedelta(hours=7)
    assert decode_datetime(inverted, policy).at == datetime(2026, 11, 27, 16, 0, tzinfo=UTC)


# --- selective access by entry; capture period in seconds --------------------------------------


def test_selective_access_by_entry_is_encoded_byte_for_byte() -> None:
    assert entry_access(5, 100) == bytes.fromhex("02020406000000050600000064120001120000")
    request = b"\xc0\x01\xc1" + bytes.fromhex("00070100630100ff02") + b"\x01" + entry_access(1)
    assert request.hex() == ("c001c100070100630100ff020102020406000000010600000000120001120000")


def test_the_capture_period_is_seconds_when_a_buffer_omits_repeated_times() -> None:
    columns = (Column(8, Obis(0, 0, 1, 0, 0), 2), Column(3, Obis(1, 0, 1, 8, 0), 2))
    first = bytes.fromhex("07ea0b1b0510000000000000")
    rows = [(first, 1), (None, 2), (None, 3)]
    times = _times(rows, columns, ReadSpec(time=HANOI), 900)
    assert [t.at for t in times if t] == [
        datetime(2026, 11, 27, 16, 0, tzinfo=UTC) + timedelta(seconds=s) for s in (0, 900, 1800)
    ]


# --- the PDU size and the HDLC parameters are proposed, not fixed ------------------------------


def test_the_aarq_proposes_our_pdu_size_not_65535() -> None:
    association = Association(AssociationSettings(max_pdu=512))
    aarq = dlms_acse.ApplicationAssociationRequest.from_bytes(association.aarq())
    assert aarq.user_information.content.client_max_receive_pdu_size == 512


def test_the_snrm_proposes_information_field_size_and_window() -> None:
    link = HdlcLink(16, 1, 17, hdlc.LinkParameters(512, 512, 7, 7))
    snrm = hdlc.Frame.from_bytes(link.snrm())
    assert hdlc.LinkParameters.from_bytes(snrm.information) == hdlc.LinkParameters(512, 512, 7, 7)


def test_hls_gmac_settings_need_both_keys() -> None:
    from headend.protocol.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        AssociationSettings(auth=AuthLevel.HLS_GMAC, encryption_key=bytes(16))


def test_a_clock_date_time_decodes_with_its_status() -> None:
    raw = bytes.fromhex("07ea0b1b0510000000000081")
    got = decode_datetime(raw, HANOI)
    assert got.status is not None and got.status.invalid and got.status.daylight_saving_active
    assert got.at.tzinfo == UTC or got.at.utcoffset() == timedelta(0)


def test_an_aare_with_a_server_max_pdu_of_1_is_the_meters_decode_error_not_ours() -> None:
    aare = bytes(
        dlms_acse.ApplicationAssociationResponse(
            result=dlms_enums.AssociationResult.ACCEPTED,
            result_source_diagnostics=dlms_enums.AcseServiceUserDiagnostics.NULL,
            user_information=dlms_acse.UserInformation(
                content=dlms_xdlms.InitiateResponse(
                    negotiated_conformance=proposed_conformance(False),
                    server_max_receive_pdu_size=1,
                )
            ),
        ).to_bytes()
    )
    transport = ScriptedTransport([aare])

    async def go() -> None:
        async with MeterSession(MeterTarget("m"), transport=transport):
            pass

    with pytest.raises(ProtocolError) as caught:
        run(go())
    assert caught.value.category is FailureCategory.DECODE_ERROR
    assert "max receive PDU size of 1 is below" in str(caught.value)
