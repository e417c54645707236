"""The firmware in QEMU (mps2-an500) over the real pyserial socket
transport: handshake, self-test, outputs equal to the model's reference,
exact and repeatable instruction counts, stack high-water mark."""
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fixtures.firmware_helpers import build_fixture
from fixtures.tiny_model import reference

from tinyfake.errors import UserError
from tinyfake.harness.protocol import Device
from tinyfake.harness.qemu import QemuSim


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return build_fixture(tmp_path_factory.mktemp("fw"))


def _inputs(n, seed=0):
    return np.random.default_rng(seed).integers(-128, 128, (n, 16, 16, 3)).astype(np.int8)


def test_roundtrip_selftest_and_instruction_counts(build):
    with QemuSim(build.sim_elf, build.board) as sim:
        with Device(sim.url, instructions=sim.instructions, expected_hash=build.model.hash) as dev:
            info = dev.hello()
            assert (info.board, info.platform, info.model) == ("stm32h743", "mps2-an500", "tiny_fixture")
            assert info.input_shape == (16, 16, 3) and info.macs == 768
            assert info.arena_bytes == 768 and info.flash_bytes > 0 and info.ram_bytes > 16384
            selftests = [dev.selftest() for _ in range(3)]
            assert all(r.output.tolist() == selftests[0].output.tolist() for r in selftests)
            counts = [r.instructions for r in selftests]
            assert counts[0] > 1000 and len(set(counts)) == 1, counts  # exact and repeatable
            for x in _inputs(4):
                r = dev.infer(x)
                assert r.output.tolist() == reference(x).tolist()
                assert r.cycles == 0  # QEMU models no DWT cycle counter
            bench = dev.bench(x, 5)
            assert bench["n"] == 5 and bench["instructions_min"] == bench["instructions_max"]
            stat = dev.stat()
            assert 0 < stat["stack_used"] < stat["stack_size"] == 16384
            assert dev.stats.resent == 0
            dev.exit(0)
        assert sim.wait() == 0  # semihosting exit code


def test_same_counts_in_a_fresh_simulator(build):
    """Deterministic across QEMU runs, not only within one."""
    counts = []
    for _ in range(2):
        with QemuSim(build.sim_elf, build.board) as sim, Device(sim.url, instructions=sim.instructions) as dev:
            dev.hello()
            counts.append(dev.infer(_inputs(1, seed=5)[0]).instructions)
            dev.exit(0)
    assert counts[0] == counts[1] and counts[0] > 1000


def test_wrong_model_is_refused(build, tmp_path):
    with QemuSim(build.sim_elf, build.board) as sim:
        with Device(sim.url, expected_hash="ffffffffffffffff") as dev:
            with pytest.raises(UserError, match="runs model 'tiny_fixture'.*not this run's model"):
                dev.hello()


def test_commands_need_a_session(build):
    with QemuSim(build.sim_elf, build.board) as sim, Device(sim.url) as dev:
        from tinyfake.harness.protocol import BoardReset
        with pytest.raises(BoardReset):
            dev.stat()  # no HELLO yet: the device says nosession, read as a reset


def test_instructions_per_operator(tmp_path):
    """A profiling build marks every operator; the plugin splits the count."""
    from fixtures.firmware_helpers import fixture_gen
    from tinyfake.firmware import build_firmware
    b = build_firmware(fixture_gen(tmp_path / "gen"), "stm32h743", tmp_path / "fw",
                       reference=reference, profile_ops=True)
    with QemuSim(b.sim_elf, b.board) as sim, Device(sim.url, instructions=sim.instructions) as dev:
        dev.hello()
        r = dev.infer(_inputs(1)[0])
        assert len(sim.instructions.ops) == 1  # the fixture has one operator
        assert 0 < sim.instructions.ops[0] < r.instructions
        dev.exit(0)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_killed_host_takes_its_qemu_with_it(build):
    # SIGKILL leaves no chance to clean up: the kernel must end QEMU (a
    # timeout-killed `tinyfake verify` once left one spinning for minutes).
    code = ("import time\n"
            "from tinyfake.firmware import load_board\n"
            "from tinyfake.harness.qemu import QemuSim\n"
            f"sim = QemuSim({str(build.sim_elf)!r}, load_board('stm32h743'))\n"
            "print(sim.proc.pid, flush=True)\n"
            "time.sleep(300)\n")
    host = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(host.stdout.readline())
        assert _alive(pid)
    finally:
        host.kill()
        host.wait()
    deadline = time.monotonic() + 20
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
