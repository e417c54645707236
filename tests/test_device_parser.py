"""The firmware's command parser (the real firmware/app/protocol.c, host
build): each defence of the device side, by the fault it stops."""
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from fixtures.device_parser import SID, DeviceParser, crc_line

from tinyfake.harness.protocol import load_frame

OTHER = "0000000b"
INPUT = bytes(range(48))  # the stand-in model's input is 4x4x3
CRC = f"{zlib.crc32(INPUT):08x}"


@pytest.fixture
def board(tmp_path_factory):
    b = DeviceParser(tmp_path_factory.getbasetemp())
    assert b.send(f"1 {SID} HELLO")[0].startswith(f"1 {SID} OK proto=2 ")
    return b


def _load(board, seq=2, sid=SID):
    return board.send(f"{seq} {sid} LOAD 0 {INPUT.hex()}")


def test_boot_line_says_reset_reason_and_flash_check(tmp_path):
    assert DeviceParser(tmp_path).boot_lines == [
        "BOOT tinyfake proto=2 fw=0.2.0 board=host hash=h0s7h0s7h0s7h0s7 reset=power flash=ok"]


def test_run_reply_names_its_command_session_input_and_model(board):
    assert _load(board) == [f"2 {SID} OK"]
    ack, ok = board.send(f"3 {SID} RUN {CRC}")
    assert ack == f"3 {SID} ACK"
    assert ok.startswith(f"3 {SID} OK out=") and ok.endswith(f" in_crc={CRC} hash=h0s7h0s7h0s7h0s7")


@pytest.mark.parametrize("line", [
    f"4 {SID} LOAD 0 00ff ",         # a trailing space
    f"4 {SID} LOAD  0 00ff",         # two spaces
    f" 4 {SID} LOAD 0 00ff",         # a leading space
    f"4 {SID} LOAD 0 00\tff",        # a control byte
    f"4 {SID} LOAD 0 00ff x y z",    # more fields than any command takes
])
def test_malformed_lines_are_syntax_errors_and_change_nothing(board, line):
    _load(board)
    reply = board.send(line.encode("latin-1"))
    assert len(reply) == 1 and reply[0].endswith("ERR syntax"), reply
    assert board.send(f"5 {SID} RUN {CRC}")[-1].startswith(f"5 {SID} OK")  # the input is intact


@pytest.mark.parametrize("line, usage", [
    (f"6 {SID} EXIT 5 junk", "EXIT"),       # a stray token must not reset the board
    (f"6 {SID} EXIT", "EXIT"),
    (f"6 {SID} EXIT 256", "EXIT"),
    (f"6 {SID} BENCH 0 {CRC}", "BENCH"),
    (f"6 {SID} HELLO now", "HELLO"),
    (f"6 {SID} BYE now", "BYE"),
])
def test_stray_or_missing_arguments_are_refused(board, line, usage):
    reply = board.send(line)
    assert reply == [reply[0]] and f"ERR usage: {usage}" in reply[0]
    assert board.exit_code is None


def test_exit_exits_with_its_code(board):
    board.send(f"7 {SID} EXIT 5")
    assert board.exit_code == 5


def test_bench_is_capped_in_count(board):
    _load(board)
    for n in ("4294967289", "101"):
        reply = board.send(f"8 {SID} BENCH {n} {CRC}")
        assert reply == [f"8 {SID} ERR usage: BENCH <n, 1 to bench_max> <input crc32>"]
    assert board.max_invocations == 0
    ok = board.send(f"9 {SID} BENCH 100 {CRC}")[-1]
    assert " n=100 capped=0 " in ok and board.max_invocations == 100


def test_bench_is_capped_in_time(tmp_path):
    board = DeviceParser(tmp_path, cycles_per_invoke=480_000_000)  # 1 s per inference
    board.send(f"1 {SID} HELLO")
    _load(board)
    ok = board.send(f"3 {SID} BENCH 100 {CRC}")[-1]
    assert " n=5 capped=1 " in ok and board.max_invocations == 5


def test_one_session_at_a_time(board):
    assert board.send(f"2 {OTHER} HELLO") == [f"2 {OTHER} ERR busy"]
    assert board.send(f"3 {OTHER} STAT") == [f"3 {OTHER} ERR notyours"]
    assert board.send(f"4 {OTHER} EXIT 0") == [f"4 {OTHER} ERR notyours"] and board.exit_code is None
    assert board.send(f"5 {SID} HELLO")[0].startswith(f"5 {SID} OK")   # the owner may say hello again
    assert board.send(f"6 {OTHER} HELLO takeover")[0].startswith(f"6 {OTHER} OK")
    assert board.send(f"7 {SID} STAT") == [f"7 {SID} ERR notyours"]
    assert board.send(f"8 {OTHER} BYE") == [f"8 {OTHER} OK"]
    assert board.send(f"9 {OTHER} STAT") == [f"9 {OTHER} ERR nosession"]
    assert board.send(f"10 {SID} HELLO")[0].startswith(f"10 {SID} OK")


def test_a_reset_ends_the_session(board):
    board.boot()
    assert board.send(f"2 {SID} STAT") == [f"2 {SID} ERR nosession"]


def test_a_nul_drops_the_partial_line_and_runs_nothing(board):
    """0x00 is the resync byte (it ends a binary frame): a NUL inside a line
    drops what came before it; the rest is NACKed; the input is intact."""
    _load(board)
    assert board.feed(crc_line(f"4 {SID} LOAD 0 00\x00ff".encode())) == ["- - ERR badcrc"]
    assert board.send(f"5 {SID} RUN {CRC}")[-1].startswith(f"5 {SID} OK")


def _frame(seq, offset, payload, sid=SID):
    return b"\x00" + load_frame(seq, sid, offset, payload)


def test_a_binary_load_frame_loads_like_a_text_load(board):
    assert "loadb=1024" in board.send(f"3 {SID} HELLO")[0]
    assert board.feed(_frame(4, 0, INPUT[:20]) + _frame(5, 20, INPUT[20:])) == [f"4 {SID} OK", f"5 {SID} OK"]
    assert board.send(f"6 {SID} RUN {CRC}")[-1].startswith(f"6 {SID} OK")
    # Zeros in the data (COBS codes them out of the frame) and 0xFF bytes.
    data = bytes(47) + b"\xff"
    assert board.feed(_frame(7, 0, data)) == [f"7 {SID} OK"]
    assert board.send(f"8 {SID} RUN {zlib.crc32(data):08x}")[-1].startswith(f"8 {SID} OK")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=st.sampled_from([1, 255, 256, 512, 65536, 1 << 24, 4_000_000_000]) | st.integers(1, 4_000_000_000),
       data=st.binary(min_size=48, max_size=48)
       | st.lists(st.sampled_from([0, 1, 255]), min_size=48, max_size=48).map(bytes))
def test_any_frame_decodes_to_its_bytes(board, seq, data):
    """The device's COBS decoder against the host's encoder, checked by the
    input's CRC: seqs whose low byte is 0 (the frame then starts with a
    zero), zeros and 0xFF anywhere."""
    assert board.feed(_frame(seq, 0, data)) == [f"{seq} {SID} OK"]
    assert board.send(f"2 {SID} RUN {zlib.crc32(data):08x}")[-1].startswith(f"2 {SID} OK")


def test_frames_longer_than_a_cobs_block_decode(board):
    """A block holds at most 254 bytes: a 0xFF code, then no implied zero."""
    board.send(f"3 {SID} HELLO")
    # The stand-in input is 48 bytes: a 600-byte frame, decoded whole, is refused for its size only.
    assert board.feed(_frame(4, 0, b"\x01" * 600)) == [f"4 {SID} ERR LOAD outside the input tensor"]
    assert board.feed(_frame(5, 0, INPUT)) == [f"5 {SID} OK"]


DAMAGE = {
    "a flipped bit": lambda f: f[:-10] + bytes([f[-10] ^ 1]) + f[-9:],
    "a lost byte": lambda f: f[:-10] + f[-9:],
    "cut short": lambda f: f[:-20] + b"\x00",
    "a doubled start byte": lambda f: f[:2] + f[1:],
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_frame_is_nacked_with_its_seq_and_loads_nothing(board, damage):
    _load(board)
    reply = board.feed(DAMAGE[damage](_frame(9, 0, bytes(range(100, 148)))))
    # Named by its seq where the header survived (a garbled one is a reply the host skips).
    assert reply == ["9 - ERR badcrc"] or (damage == "a doubled start byte" and reply[0].endswith(" - ERR badcrc"))
    assert board.send(f"10 {SID} RUN {CRC}")[-1].startswith(f"10 {SID} OK")  # the input is intact


def test_frames_are_held_to_the_session_and_the_input(board):
    assert board.feed(_frame(11, 0, INPUT, sid=OTHER)) == [f"11 {OTHER} ERR notyours"]
    assert board.feed(_frame(12, 40, INPUT[:9])) == [f"12 {SID} ERR LOAD outside the input tensor"]
    assert board.feed(_frame(13, 1 << 31, INPUT[:1])) == [f"13 {SID} ERR LOAD outside the input tensor"]
    reply = board.feed(b"\x00\x02" + b"\x07" * 3000 + b"\x00")  # past the line buffer
    assert len(reply) == 1 and reply[0].endswith(" - ERR toolong")
    board.boot()
    assert board.feed(_frame(14, 0, INPUT)) == [f"14 {SID} ERR nosession"]


def test_nacks_name_the_command_they_answer(board):
    line = crc_line(f"12 {SID} STAT".encode())
    assert board.feed(line[:-3] + b"00\n") == ["12 - ERR badcrc"]
    assert board.feed(b"x" + line) == ["- - ERR badcrc"]       # no seq to name
    assert board.feed(b"1" * 2000 + b"\n") == ["- - ERR toolong"]


def test_an_overrun_is_nacked_and_not_executed(board):
    _load(board)
    board.feed(b"13 ")
    board.lost()   # the UART lost bytes here; the rest still makes a CRC-valid line by chance
    assert board.feed(crc_line(f"13 {SID} LOAD 0 {'00' * 48}".encode())) == ["13 - ERR overrun"]
    assert board.send(f"14 {SID} RUN {CRC}")[-1].startswith(f"14 {SID} OK")  # nothing was written


def test_a_damaged_flash_refuses_inference(tmp_path):
    board = DeviceParser(tmp_path, flash_damaged=True)
    assert board.boot_lines[0].endswith(" flash=bad")
    hello = board.send(f"1 {SID} HELLO")[0]
    assert " flash_crc=deadbeef flash_ok=0" in hello
    _load(board)
    for cmd in (f"RUN {CRC}", f"BENCH 1 {CRC}", "SELFTEST"):
        assert board.send(f"3 {SID} {cmd}") == [f"3 {SID} ERR flashcrc"]
    assert board.max_invocations == 0


def test_input_crc_mismatch_runs_nothing(board):
    _load(board)
    assert board.send(f"3 {SID} RUN 00000000") == [f"3 {SID} ERR inputcrc have={CRC}"]
    assert board.max_invocations == 0
