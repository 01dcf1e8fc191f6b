"""HDLC frames and the meter's link station, bytes in and bytes out."""

from __future__ import annotations

import pytest
from dlms_cosem.hdlc import address, frames

from headend.simulator.hdlc import (
    Control,
    Frame,
    FrameError,
    FrameReader,
    Kind,
    LinkParameters,
    ServerAddress,
    check_sequence,
)
from headend.simulator.station import HdlcStation, LinkState

SERVER = address.HdlcAddress(1, 17, "server")
CLIENT = address.HdlcAddress(16, None, "client")
SNRM = bytes.fromhex("7ea00802232193bd647e")
UA_DEFAULT = bytes.fromhex("7ea01f21022373e6c7818012050180060180070400000001080400000001533b7e")


class Upper:
    def __init__(self) -> None:
        self.apdus: list[bytes] = []
        self.resets = 0

    def request(self, apdu: bytes) -> bytes | None:
        self.apdus.append(apdu)
        if apdu.startswith(b"big:"):
            return bytes(i % 256 for i in range(int(apdu[4:])))
        return b"ok:" + apdu

    def reset(self) -> None:
        self.resets += 1


def client_i(
    payload: bytes, ns: int, nr: int, segmented: bool = False, final: bool = True
) -> Frame:
    raw = frames.InformationFrame(
        SERVER,
        CLIENT,
        payload,
        segmented=segmented,
        final=final,
        send_sequence_number=ns,
        receive_sequence_number=nr,
    ).to_bytes()
    return Frame.decode(raw)


def client_rr(nr: int) -> Frame:
    return Frame.decode(
        frames.ReceiveReadyFrame(SERVER, CLIENT, receive_sequence_number=nr).to_bytes()
    )


def test_the_check_sequence_is_crc16_x25_least_significant_byte_first() -> None:
    assert check_sequence(b"123456789") == bytes.fromhex("6e90")


def test_an_snrm_from_dlms_cosem_decodes_to_its_addresses_and_control() -> None:
    assert frames.SetNormalResponseModeFrame(SERVER, CLIENT).to_bytes() == SNRM
    frame = Frame.decode(SNRM)
    assert frame.server == ServerAddress(1, 17, 2)
    assert frame.client == 16
    assert frame.control == Control(Kind.SNRM, True)


def test_a_ua_with_default_parameters_encodes_to_bytes_dlms_cosem_accepts() -> None:
    ua = Frame(ServerAddress(1, 17, 2), 16, Control(Kind.UA), LinkParameters().to_info())
    assert ua.encode() == UA_DEFAULT
    assert Frame.decode(UA_DEFAULT, from_client=False) == ua
    parsed = frames.UnNumberedAcknowledgmentFrame.from_bytes(UA_DEFAULT)
    assert parsed.payload == LinkParameters().to_info()


def test_an_information_frame_round_trips_with_dlms_cosem_in_both_directions() -> None:
    ours = Frame(
        ServerAddress(1, 17, 2), 16, Control(Kind.I, False, 5, 3), b"\xe6\xe7\x00abc", True
    )
    theirs = frames.InformationFrame.from_bytes(ours.encode())
    assert (theirs.send_sequence_number, theirs.receive_sequence_number) == (5, 3)
    assert theirs.segmented and not theirs.final and theirs.payload == b"\xe6\xe7\x00abc"


def test_four_byte_and_one_byte_server_addresses_are_read_and_answered_alike() -> None:
    for server in (ServerAddress(1, 0x1234, 4), ServerAddress(1, None, 1)):
        frame = Frame(server, 16, Control(Kind.SNRM))
        decoded = Frame.decode(frame.encode(from_server=False))
        assert decoded.server == server


def test_a_frame_with_a_wrong_check_sequence_is_refused() -> None:
    broken = SNRM[:-3] + bytes((SNRM[-3] ^ 1,)) + SNRM[-2:]
    with pytest.raises(FrameError, match="FCS"):
        Frame.decode(broken)


def test_frames_are_cut_by_length_even_when_the_check_sequence_ends_in_a_flag_byte() -> None:
    for n in range(2000):
        frame = Frame(
            ServerAddress(1, 17, 2), 16, Control(Kind.I, True, 0, 0), b"x" + n.to_bytes(2, "big")
        )
        raw = frame.encode()
        if raw[-2] == 0x7E:
            break
    else:  # pragma: no cover - the search above always finds one
        pytest.fail("no frame with 0x7E as its last FCS byte")
    reader = FrameReader()
    assert reader.feed(raw[:-1]) == []
    assert reader.feed(raw[-1:] + SNRM) == [raw, SNRM]


def test_the_reader_skips_noise_doubled_flags_and_shares_a_closing_flag() -> None:
    reader = FrameReader()
    shared = SNRM + SNRM[1:]  # the closing flag opens the next frame
    assert reader.feed(b"\x00\x11" + b"\x7e" + shared) == [SNRM, SNRM]
    assert reader.pending <= 1


def test_snrm_proposals_are_agreed_down_to_what_the_meter_supports() -> None:
    own = LinkParameters(max_info_tx=128, max_info_rx=128, window_tx=1, window_rx=1)
    proposal = LinkParameters(max_info_tx=512, max_info_rx=256, window_tx=7, window_rx=7)
    agreed = own.agree(LinkParameters.from_info(proposal.to_info()))
    assert agreed == LinkParameters(128, 128, 1, 1)
    assert LinkParameters.from_info(b"") == LinkParameters()


def test_a_disconnected_station_answers_dm_to_information_and_ua_to_snrm() -> None:
    upper = Upper()
    station = HdlcStation(LinkParameters(), upper)
    [dm] = station.receive(client_i(b"\xe6\xe6\x00hi", 0, 0))
    assert dm.control.kind is Kind.DM
    [ua] = station.receive(Frame.decode(SNRM))
    assert ua.control.kind is Kind.UA and station.state is LinkState.CONNECTED
    assert upper.apdus == []


def test_a_request_goes_up_without_its_llc_and_the_answer_comes_back_with_one() -> None:
    upper = Upper()
    station = HdlcStation(LinkParameters(), upper)
    station.receive(Frame.decode(SNRM))
    [answer] = station.receive(client_i(b"\xe6\xe6\x00hi", 0, 0))
    assert upper.apdus == [b"hi"]
    assert answer.info == b"\xe6\xe7\x00ok:hi"
    assert (answer.control.ns, answer.control.nr, answer.segmented) == (0, 1, False)


def test_a_long_answer_is_segmented_and_each_segment_follows_the_clients_rr() -> None:
    upper = Upper()
    station = HdlcStation(LinkParameters(max_info_tx=128), upper)
    station.receive(Frame.decode(SNRM))
    [first] = station.receive(client_i(b"\xe6\xe6\x00big:300", 0, 0))
    assert first.segmented and first.control.poll_final and len(first.info) == 128
    [second] = station.receive(client_rr(1))
    [third] = station.receive(client_rr(2))
    assert second.segmented and not third.segmented
    assert [f.control.ns for f in (first, second, third)] == [0, 1, 2]
    assert (first.info + second.info + third.info)[3:] == bytes(i % 256 for i in range(300))


def test_a_window_of_three_sends_three_segments_before_waiting() -> None:
    upper = Upper()
    own = LinkParameters(max_info_tx=128, window_tx=3)
    station = HdlcStation(own, upper)
    snrm = Frame(
        ServerAddress(1, 17, 2), 16, Control(Kind.SNRM), LinkParameters(window_rx=3).to_info()
    )
    station.receive(snrm)
    window = station.receive(client_i(b"\xe6\xe6\x00big:500", 0, 0))
    assert [f.control.poll_final for f in window] == [False, False, True]
    [last] = station.receive(client_rr(3))
    assert not last.segmented


def test_a_segmented_request_is_acknowledged_with_rr_and_joined() -> None:
    upper = Upper()
    station = HdlcStation(LinkParameters(), upper)
    station.receive(Frame.decode(SNRM))
    [rr] = station.receive(client_i(b"\xe6\xe6\x00ab", 0, 0, segmented=True))
    assert rr.control == Control(Kind.RR, True, 0, 1)
    [answer] = station.receive(client_i(b"cd", 1, 0))
    assert upper.apdus == [b"abcd"] and answer.control.nr == 2


def test_a_repeated_request_gets_the_same_answer_again_without_a_second_call() -> None:
    upper = Upper()
    station = HdlcStation(LinkParameters(), upper)
    station.receive(Frame.decode(SNRM))
    first = station.receive(client_i(b"\xe6\xe6\x00hi", 0, 0))
    again = station.receive(client_i(b"\xe6\xe6\x00hi", 0, 0))
    assert again == first and upper.apdus == [b"hi"]


def test_disc_is_answered_with_ua_and_ends_the_association() -> None:
    upper = Upper()
    station = HdlcStation(LinkParameters(), upper)
    station.receive(Frame.decode(SNRM))
    [ua] = station.receive(Frame.decode(frames.DisconnectFrame(SERVER, CLIENT).to_bytes()))
    assert ua.control.kind is Kind.UA and ua.info == b""
    assert station.state is LinkState.DISCONNECTED and upper.resets == 2
