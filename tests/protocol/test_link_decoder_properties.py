"""Properties of the link decoders (TCP wrapper, HDLC): any bytes a meter sends give frames or
a ``ProtocolError``, never another exception, and nothing they hold grows past its bound."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from headend.protocol import hdlc
from headend.protocol.errors import ProtocolError
from headend.protocol.hdlc_link import HdlcLink
from headend.protocol.wrapper import WrapperReader, header

BOUNDED = settings(max_examples=300, deadline=None, derandomize=True, database=None)
chunks = st.lists(st.binary(max_size=300), max_size=12)


def _wrapper_frames() -> st.SearchStrategy[bytes]:
    """Byte strings that are often wrapper frames, or nearly."""
    frame = st.builds(
        lambda src, dst, body, cut: (header(src, dst, len(body)) + body)[: cut or None],
        st.sampled_from([1, 16, 0xFFFF]),
        st.sampled_from([1, 16, 0]),
        st.binary(max_size=200),
        st.integers(0, 40),
    )
    return st.lists(st.one_of(frame, st.binary(max_size=20)), max_size=6).map(b"".join)


def _drain_wrapper(reader: WrapperReader) -> list[bytes]:
    found = []
    for _ in range(1000):
        try:
            apdu = reader.next_apdu()
        except ProtocolError:
            continue
        if apdu is None:
            return found
        assert len(apdu.apdu) <= reader.max_apdu
        found.append(apdu.apdu)
    raise AssertionError("the wrapper reader never asked for more bytes")


@BOUNDED
@given(st.one_of(_wrapper_frames().map(lambda b: [b]), chunks), st.integers(0, 0xFFFF))
def test_any_bytes_give_the_wrapper_reader_apdus_or_a_protocol_error(
    pieces: list[bytes], max_apdu: int
) -> None:
    reader = WrapperReader(max_apdu)
    for piece in pieces:
        reader.feed(piece)
        _drain_wrapper(reader)


def _hdlc_frames() -> st.SearchStrategy[bytes]:
    """Byte strings that are often HDLC frames (valid check sequences), or nearly."""
    address = st.sampled_from([b"\x21", b"\x02\x23", b"\x00\x02\x00\x23", b"\x02", b""])
    frame = st.builds(
        lambda d, s, c, info, seg: hdlc.Frame(d, s, c, info, seg).to_bytes(),
        address,
        address,
        st.integers(0, 255),
        st.binary(max_size=150),
        st.booleans(),
    )
    mutated = st.tuples(frame, st.integers(0, 200), st.integers(0, 255)).map(
        lambda t: t[0][: t[1]] + bytes((t[2],)) + t[0][t[1] + 1 :]
    )
    return st.lists(st.one_of(frame, mutated, st.binary(max_size=20)), max_size=6).map(b"".join)


def _drain_hdlc(reader: hdlc.FrameReader) -> list[hdlc.Frame]:
    found = []
    for _ in range(5000):
        try:
            raw = reader.next_frame()
            if raw is None:
                return found
            found.append(hdlc.Frame.from_bytes(raw))
        except ProtocolError:
            continue
    raise AssertionError("the HDLC reader never asked for more bytes")


@BOUNDED
@given(st.one_of(_hdlc_frames().map(lambda b: [b]), chunks))
def test_any_bytes_give_the_hdlc_reader_frames_or_a_protocol_error(pieces: list[bytes]) -> None:
    reader = hdlc.FrameReader()
    for piece in pieces:
        try:
            reader.feed(piece)
        except ProtocolError:
            continue
        _drain_hdlc(reader)


@BOUNDED
@given(st.binary(max_size=40))
def test_any_bytes_decode_as_one_hdlc_frame_or_a_protocol_error(data: bytes) -> None:
    for raw in (data, b"\x7e" + data + b"\x7e"):
        with contextlib.suppress(ProtocolError):
            hdlc.Frame.from_bytes(raw)


@BOUNDED
@given(st.binary(max_size=40))
def test_any_ua_information_sets_up_the_link_or_is_a_protocol_error(info: bytes) -> None:
    link = HdlcLink(16, 1, 17)
    link.snrm()
    try:
        link.on_connect_answer(hdlc.Frame(link.client, link.server, hdlc.UA, info))
    except ProtocolError:
        return
    assert link.negotiated.max_info_transmit >= 16
    assert link.request_windows(b"\xc0\x01\xc1" + bytes(300))


@BOUNDED
@given(
    st.lists(
        st.tuples(st.integers(0, 255), st.binary(max_size=130), st.booleans()),
        max_size=40,
    )
)
def test_any_answer_frames_give_the_link_an_apdu_or_a_protocol_error_within_its_cap(
    frames: list[tuple[int, bytes, bool]],
) -> None:
    link = HdlcLink(16, 1, 17, max_apdu=1024)
    link.snrm()
    link.on_connect_answer(hdlc.Frame(link.client, link.server, hdlc.UA))
    link.request_windows(b"\xc0\x01\xc1")
    for control, info, segmented in frames:
        try:
            received = link.on_frame(hdlc.Frame(link.client, link.server, control, info, segmented))
        except ProtocolError:
            return
        if received.complete is not None:
            assert len(received.complete) <= 1024
            return
