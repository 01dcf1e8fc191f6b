"""HDLC frames: codec pinned to literal bytes, read by length, and the sans-IO link."""

from __future__ import annotations

import pytest

from headend.protocol import hdlc
from headend.protocol.errors import LinkSetupError, MalformedFrameError
from headend.protocol.hdlc_link import HdlcLink, LinkState

pytestmark = pytest.mark.timeout(10)

CLIENT = hdlc.client_address(16)
SERVER = hdlc.server_address(1, 17)


def test_the_frame_check_sequence_is_crc16_x25() -> None:
    assert hdlc.fcs16(b"123456789") == 0x906E


def test_an_snrm_without_parameters_pins_one_byte_string_both_ways() -> None:
    raw = bytes.fromhex("7ea00802232193bd647e")
    frame = hdlc.Frame(SERVER, CLIENT, hdlc.SNRM)
    assert frame.to_bytes() == raw
    assert hdlc.Frame.from_bytes(raw) == frame


def test_an_information_frame_pins_the_bytes_dlms_cosem_also_produces() -> None:
    frame = hdlc.information_frame(
        SERVER,
        CLIENT,
        b"\xe6\xe6\x00\xc0\x01\xc1",
        send_sequence=2,
        receive_sequence=3,
        final=True,
        segmented=False,
    )
    raw = frame.to_bytes()
    assert raw == bytes.fromhex("7ea010022321746c19e6e600c001c123cd7e")
    decoded = hdlc.Frame.from_bytes(raw)
    assert decoded == frame
    assert (decoded.send_sequence, decoded.receive_sequence, decoded.poll_final) == (2, 3, True)


def test_server_addresses_use_two_bytes_or_four_when_a_part_exceeds_127() -> None:
    assert hdlc.server_address(1, 17) == bytes((0x02, 0x23))
    assert hdlc.server_address(1, None) == bytes((0x03,))
    assert hdlc.server_address(1, 0x3FFF) == bytes((0x00, 0x02, 0xFE, 0xFF))


def _frame_whose_fcs_ends_with_a_flag() -> bytes:
    for n in range(5000):
        frame = hdlc.Frame(CLIENT, SERVER, 0x30, b"\xe6\xe7\x00" + n.to_bytes(2, "big"))
        raw = frame.to_bytes()
        if raw[-2] == 0x7E:
            return raw
    raise AssertionError("no such frame in the search range")


def test_a_frame_whose_last_check_byte_is_0x7e_is_read_by_its_length() -> None:
    raw = _frame_whose_fcs_ends_with_a_flag()
    reader = hdlc.FrameReader()
    reader.feed(raw)
    frame = reader.next_frame()
    assert frame is not None and hdlc.Frame.from_bytes(frame).information.startswith(b"\xe6\xe7")
    assert reader.next_frame() is None


def test_frames_arriving_byte_by_byte_or_back_to_back_sharing_a_flag_are_all_found() -> None:
    a = hdlc.Frame(CLIENT, SERVER, 0x10, b"\xe6\xe7\x00abc").to_bytes()
    b = _frame_whose_fcs_ends_with_a_flag()
    stream = b"\x00\x11" + a + b[1:]  # noise, then two frames sharing one flag
    reader = hdlc.FrameReader()
    found = []
    for i in range(len(stream)):
        reader.feed(stream[i : i + 1])
        while (frame := reader.next_frame()) is not None:
            found.append(frame)
    assert [bytes(f) for f in found] == [a[1:-1], b[1:-1]]


def test_a_corrupted_frame_check_sequence_is_a_malformed_frame() -> None:
    raw = bytearray(hdlc.Frame(CLIENT, SERVER, 0x10, b"\xe6\xe7\x00abc").to_bytes())
    raw[-2] ^= 0x01
    with pytest.raises(MalformedFrameError):
        hdlc.Frame.from_bytes(bytes(raw))


def test_link_parameters_round_trip_and_the_ua_answer_sets_the_negotiated_values() -> None:
    proposed = hdlc.LinkParameters(512, 512, 7, 7)
    assert hdlc.LinkParameters.from_bytes(proposed.to_bytes()) == proposed
    assert proposed.to_bytes() == bytes.fromhex("8180140502020006020200070400000007080400000007")
    link = HdlcLink(16, 1, 17, proposed)
    snrm = hdlc.Frame.from_bytes(link.snrm())
    assert hdlc.LinkParameters.from_bytes(snrm.information) == proposed
    server = hdlc.LinkParameters(
        max_info_transmit=256, max_info_receive=128, window_transmit=1, window_receive=3
    )
    link.on_connect_answer(hdlc.Frame(CLIENT, SERVER, hdlc.UA, server.to_bytes()))
    assert link.negotiated == hdlc.LinkParameters(128, 256, 3, 1)
    assert link.state is LinkState.CONNECTED


def test_a_long_request_is_segmented_by_the_negotiated_size_in_windows() -> None:
    link = HdlcLink(16, 1, 17, hdlc.LinkParameters(512, 512, 7, 7))
    link.snrm()
    server = hdlc.LinkParameters(64, 64, 2, 2)
    link.on_connect_answer(hdlc.Frame(CLIENT, SERVER, hdlc.UA, server.to_bytes()))
    windows = link.request_windows(bytes(200))
    frames = [hdlc.Frame.from_bytes(f) for w in windows for f in w]
    assert [len(f.information) for f in frames] == [64, 64, 64, 11]
    assert [len(w) for w in windows] == [2, 2]
    assert [f.segmented for f in frames] == [True, True, True, False]
    assert [f.poll_final for f in frames] == [False, True, False, True]
    assert [f.send_sequence for f in frames] == [0, 1, 2, 3]


def test_a_segmented_answer_is_acknowledged_with_rr_and_reassembled() -> None:
    link = HdlcLink(16, 1, 17)
    link.snrm()
    link.on_connect_answer(hdlc.Frame(CLIENT, SERVER, hdlc.UA))
    link.request_windows(b"\xc0\x01")
    first = hdlc.information_frame(
        CLIENT,
        SERVER,
        b"\xe6\xe7\x00abc",
        send_sequence=0,
        receive_sequence=1,
        final=True,
        segmented=True,
    )
    answer = link.on_frame(hdlc.Frame.from_bytes(first.to_bytes()))
    assert answer.reply is not None
    assert hdlc.Frame.from_bytes(answer.reply).is_rr
    assert hdlc.Frame.from_bytes(answer.reply).receive_sequence == 1
    last = hdlc.information_frame(
        CLIENT, SERVER, b"def", send_sequence=1, receive_sequence=1, final=True, segmented=False
    )
    assert link.on_frame(last).complete == b"abcdef"


def test_dm_in_answer_to_snrm_is_a_link_setup_failure() -> None:
    link = HdlcLink(16, 1, 17)
    link.snrm()
    with pytest.raises(LinkSetupError):
        link.on_connect_answer(hdlc.Frame(CLIENT, SERVER, hdlc.DM))
    assert link.state is LinkState.DISCONNECTED
