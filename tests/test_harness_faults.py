"""Fault injection between the host harness and QEMU: a proxy drops,
duplicates and corrupts bytes, injects garbage, resets the board mid-
transfer or blacks out the link. Every case must end in the correct output
or one clear error, never a wrong number."""
import json
import os
import threading
import time
import zlib

import numpy as np
import pytest
from fixtures.faultproxy import FaultProxy
from fixtures.firmware_helpers import build_fixture
from fixtures.tiny_model import reference

from tinyfake.errors import UserError
from tinyfake.harness.protocol import FRAME_START, BoardReset, Device, DeviceError, frame, unframe
from tinyfake.harness.qemu import QemuSim
from tinyfake.report.elf import Elf

pytestmark = pytest.mark.slow
N_IMAGES = 6


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return build_fixture(tmp_path_factory.mktemp("fw"))


def _inputs(n, seed=1):
    return np.random.default_rng(seed).integers(-128, 128, (n, 16, 16, 3)).astype(np.int8)


# scripts/bench_faults.py reruns this module with other seeds and collects
# what each case injected and got (TINYFAKE_FAULT_LOG: one JSON line per case).
SEED = int(os.environ.get("TINYFAKE_FAULT_SEED", "0"))
LOG = os.environ.get("TINYFAKE_FAULT_LOG")


def _record(case, proxy, stats, results, wrong):
    if LOG:
        with open(LOG, "a") as f:
            f.write(json.dumps({"case": case, "seed": SEED, "injected": sum(proxy.injected.values()),
                                "resets": stats.resets, "results": results, "wrong": wrong}) + "\n")


def _run_through(build, proxy_kw, n=N_IMAGES, before=None, extra=None, **device_kw):
    """Infer n images through a damaging proxy (then `extra(dev)`: more
    commands, returning (results, wrong)); return (device stats, proxy)."""
    proxy_kw = dict(proxy_kw, seed=proxy_kw.get("seed", 0) + SEED)
    case = os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[-1].split(" ")[0]
    with QemuSim(build.sim_elf, build.board) as sim:
        proxy = FaultProxy(sim.port, **proxy_kw)
        try:
            with Device(proxy.url, timeout=0.5, retries=10, instructions=sim.instructions,
                        expected_hash=build.model.hash, **device_kw) as dev:
                dev.hello()
                if before:
                    before(sim, proxy, dev)
                wrong = 0
                for x in _inputs(n):
                    wrong += dev.infer(x).output.tolist() != reference(x).tolist()
                more, more_wrong = extra(dev) if extra else (0, 0)
                _record(case, proxy, dev.stats, n + more, wrong + more_wrong)
                # The one thing that must never happen: a wrong number.
                assert wrong + more_wrong == 0
                return dev.stats, proxy
        finally:
            proxy.close()


@pytest.mark.parametrize("fault", ["drop", "dup", "corrupt"])
def test_damaged_bytes_both_ways(build, fault):
    stats, proxy = _run_through(build, {fault: 0.001, "seed": 3})
    assert proxy.injected[fault] > 0
    assert stats.resent + stats.bad_lines + stats.nacks > 0  # noticed and recovered


def test_everything_at_once(build):
    stats, proxy = _run_through(build, {"drop": 0.001, "dup": 0.001, "corrupt": 0.001, "seed": 11})
    assert sum(proxy.injected.values()) > 3 and stats.resent > 0


GARBAGE = {
    "random": bytes(np.random.default_rng(2).integers(0, 256, 300, dtype=np.uint8)),
    "nul_run": bytes(300),
    "ff_run": b"\xff" * 300,
    "over_the_line_limit": b"7" * 5000,
    "64k_no_newline": bytes(np.random.default_rng(3).integers(0, 256, 65536, dtype=np.uint8)).replace(
        b"\n", b"."),
}


@pytest.mark.parametrize("kind", GARBAGE)
def test_garbage_resync(build, kind):
    def garbage(sim, proxy, dev):
        noise = GARBAGE[kind]
        proxy.inject(noise, to_device=True)
        proxy.inject(noise + b"\n0 OK out=00*00000000\n", to_device=False)  # fake replies too
        time.sleep(0.2)
    _run_through(build, {}, before=garbage)


@pytest.mark.parametrize("pattern, to_device, binary_load", [
    (b"*", False, True),        # the CRC field of every reply
    (b"out=", False, True),     # the first output digit
    (b"*", True, False),        # the CRC field of every text command
    (b"LOAD 0 ", True, False),  # the first input byte of a hex LOAD line
    (b"\x00" + FRAME_START, True, True),  # a binary LOAD frame's first COBS block length (0x00
                                          # appears only between frames; 0x02 alone also in data)
])
def test_hits_aimed_at_the_fields_that_matter(build, pattern, to_device, binary_load):
    def aim(sim, proxy, dev):
        proxy.aim(pattern, to_device=to_device)
    stats, proxy = _run_through(build, {}, n=3, before=aim, binary_load=binary_load)
    assert proxy.injected["corrupt"] >= 3 and stats.resent + stats.nacks > 0


def _selftest_and_bench(dev):
    x = _inputs(1, seed=9)[0]
    b = dev.bench(x, 3)
    return 2, int(dev.selftest().output.size != 2) + int(b["n"] != 3)


def test_bench_and_selftest_under_damage(build):
    stats, proxy = _run_through(build, {"corrupt": 0.001, "drop": 0.0005, "seed": 5}, n=1,
                                extra=_selftest_and_bench)
    assert sum(proxy.injected.values()) > 0


def test_reset_mid_transfer(build):
    def arm_reset(sim, proxy, dev):
        # Reset the board while the second image is being loaded.
        proxy.after_bytes_to_device(2 * 1100 + 400, lambda: sim.monitor("system_reset"))
    stats, _ = _run_through(build, {}, before=arm_reset)
    assert stats.resets >= 1


@pytest.mark.parametrize("moment", [b" HELLO", b" RUN ", b" ACK*"])
def test_reset_at_the_worst_moments(build, moment):
    """A reset as HELLO or RUN goes to the board, or as its ACK comes back."""
    def arm(sim, proxy, dev):
        fired = []

        def reset():
            if len(fired) < 2:
                fired.append(1)
                threading.Thread(target=sim.monitor, args=("system_reset",)).start()
        proxy.watch(moment, reset, to_device=moment != b" ACK*")
        if moment == b" HELLO":
            dev.reconnect()
    stats, _ = _run_through(build, {}, n=3, before=arm)
    assert stats.resets >= 1


def test_lost_acks(build):
    """The board's ACK of RUN never arrives (every other time): the final
    reply still answers the request, or the host asks again."""
    lost = []

    def lose_acks(sim, proxy, dev):
        def reshape(line):
            if b" ACK*" in line and len(lost) % 2 == 0:
                lost.append(line)
                return []
            if b" ACK*" in line:
                lost.append(None)
            return [(line, 0)]
        proxy.reshape_replies(reshape)
    _run_through(build, {}, n=4, before=lose_acks)
    assert sum(1 for x in lost if x) >= 2


@pytest.mark.parametrize("wait", [0.05, 0.8])  # within, and past, the host's 0.5 s read timeout
def test_replies_split_across_a_timeout(build, wait):
    """Replies arrive in two writes with a pause between: the host never
    takes half a line for a whole one."""
    split = []

    def split_replies(sim, proxy, dev):
        def reshape(line):
            if b" OK out=" in line and len(split) < 3:
                split.append(line)
                return [(line[:len(line) // 2], wait), (line[len(line) // 2:], 0)]
            return [(line, 0)]
        proxy.reshape_replies(reshape)
    _run_through(build, {}, n=4, before=split_replies)
    assert len(split) == 3


def test_boot_loop_ends_in_one_clear_error(build):
    with QemuSim(build.sim_elf, build.board) as sim:
        proxy = FaultProxy(sim.port)
        try:
            with Device(proxy.url, timeout=0.5, expected_hash=build.model.hash) as dev:
                dev.hello()
                # The board resets at every inference it is asked for.
                proxy.watch(b" RUN ", lambda: sim.monitor("system_reset"), to_device=True)
                with pytest.raises(UserError) as exc:
                    dev.infer(_inputs(1)[0])
                assert "did not complete" in str(exc.value) and "\n" not in str(exc.value)
                assert dev.stats.resets >= 3
        finally:
            proxy.close()


def test_dead_link_gives_one_clear_error(build):
    with QemuSim(build.sim_elf, build.board) as sim:
        proxy = FaultProxy(sim.port, to_host=False)
        try:
            with Device(proxy.url, timeout=0.3, retries=2) as dev:
                dev.hello()
                proxy.drop = 1.0  # the cable is pulled
                t0 = time.monotonic()
                with pytest.raises(UserError) as exc:
                    dev.infer(_inputs(1)[0])
                assert time.monotonic() - t0 < 10
                msg = str(exc.value)
                assert "no valid reply from the device on socket://" in msg and "\n" not in msg
        finally:
            proxy.close()


def test_missing_port_is_one_clear_error():
    with pytest.raises(UserError, match="cannot open serial port /dev/ttyNOPE"):
        Device("/dev/ttyNOPE")
    assert not os.path.exists("/dev/ttyNOPE")


# ---- defences on the real firmware in QEMU, one fault each ------------------

@pytest.fixture(scope="module")
def hooks_build(tmp_path_factory):
    return build_fixture(tmp_path_factory.mktemp("fw-hooks"), test_hooks=True)


def test_watchdog_resets_a_hung_board(hooks_build):
    with QemuSim(hooks_build.sim_elf, hooks_build.board) as sim:
        with Device(sim.url, timeout=0.5, run_timeout=5, expected_hash=hooks_build.model.hash) as dev:
            assert dev.hello().reset_reason == "power"
            with pytest.raises(BoardReset, match="reset=watchdog"):
                dev.request("HANG")          # acknowledged, then the firmware never answers
            assert dev.reconnect().reset_reason == "watchdog"
            x = _inputs(1)[0]
            assert dev.infer(x).output.tolist() == reference(x).tolist()


def test_damaged_flash_is_refused(build, tmp_path):
    rodata = next(s for s in Elf(build.sim_elf).sections if s.name == ".rodata")
    image = bytearray(build.sim_elf.read_bytes())
    image[rodata.offset + rodata.size // 2] ^= 0x10        # one bit of the constants
    damaged = tmp_path / "damaged.elf"
    damaged.write_bytes(image)
    with QemuSim(damaged, build.board) as sim:
        with Device(sim.url, timeout=0.5) as dev:
            with pytest.raises(UserError, match="flash check failed") as exc:
                dev.hello()
            assert "\n" not in str(exc.value)
            # The device itself refuses to infer, whatever the host does.
            with pytest.raises(UserError, match="flash check failed"):
                dev.request(f"RUN {zlib.crc32(bytes(768)):08x}")


def _forger(dev, kinds):
    """Replies a forger (or a confused second host) sends for each RUN: with
    the right seq but another session, with the right seq and session but
    another input, a replay of an older seq, and a NACK for another seq."""
    def forge(line: bytes) -> bytes | None:
        text = unframe(line + b"\n")
        if not text or " RUN " not in text:
            return None
        seq, sid, _, crc = text.split(" ")
        wrong = "out=7f7f cycles=0"
        other_crc = f"{(int(crc, 16) + 1) & 0xFFFFFFFF:08x}"
        fakes = {"other_session": f"{seq} 0badf00d OK {wrong} in_crc={crc} hash={dev.info.hash}",
                 "other_input": f"{seq} {sid} OK {wrong} in_crc={other_crc} hash={dev.info.hash}",
                 "other_model": f"{seq} {sid} OK {wrong} in_crc={crc} hash=0000000000000000",
                 "replay": f"{int(seq) - 1} {sid} OK {wrong} in_crc={crc} hash={dev.info.hash}",
                 "stray_nack": f"{int(seq) + 7} - ERR badcrc"}
        return b"".join(frame(fakes[k]) for k in kinds)
    return forge


FORGERIES = ["other_session", "other_input", "other_model", "replay", "stray_nack"]


@pytest.mark.parametrize("kind", FORGERIES)
def test_crc_valid_forged_replies_are_not_believed(build, kind):
    def arm(sim, proxy, dev):
        proxy.forge_replies(_forger(dev, [kind]))
    stats, _ = _run_through(build, {}, n=3, before=arm)
    assert stats.stray >= 3 and stats.resent == 0   # skipped, and no resend for a stray NACK


def test_reset_into_other_firmware_is_caught(build, tmp_path):
    other = build_fixture(tmp_path, model_hash="0123456789abcdef")
    with QemuSim(build.sim_elf, build.board) as sim, QemuSim(other.sim_elf, other.board) as sim2:
        proxy = FaultProxy(sim.port)
        try:
            with Device(proxy.url, timeout=0.5, expected_hash=build.model.hash) as dev:
                dev.hello()
                x = _inputs(1)[0]
                assert dev.infer(x).output.tolist() == reference(x).tolist()
                proxy.switch_upstream(sim2.port)  # the board is reflashed and boots
                with pytest.raises(UserError, match="not this run's model"):
                    dev.infer(x)
        finally:
            proxy.close()


def test_syntax_errors_are_not_resent(build):
    with QemuSim(build.sim_elf, build.board) as sim:
        with Device(sim.url, timeout=0.5) as dev:
            dev.hello()
            with pytest.raises(DeviceError, match="LOAD bad hex"):
                dev.request("LOAD 0 zz")
            assert dev.stats.resent == 0
