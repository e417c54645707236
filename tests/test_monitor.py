"""`tinyfake monitor`, the serial console, against the fixture firmware in
QEMU over the real pyserial socket transport."""
import subprocess
import sys

import pytest
from fixtures.firmware_helpers import build_fixture

from tinyfake.harness.qemu import QemuSim


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return build_fixture(tmp_path_factory.mktemp("fw"))


def _monitor(url: str, typed: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyfake", "monitor", "--port", url, "--quiet", "5", *extra],
                          input=typed, capture_output=True, text=True, timeout=60)


def test_typed_commands_are_framed_and_the_replies_printed(build):
    with QemuSim(build.sim_elf, build.board, count_instructions=False) as sim:
        r = _monitor(sim.url, "SELFTEST\nstat\n")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("BOOT tinyfake proto=2"), r.stdout
    # The session opened by itself before SELFTEST, "stat" went as STAT, and
    # every reply passed its CRC check (else it would show with a "?").
    assert [ln for ln in lines if ln.startswith("> ")] == ["> HELLO", "> SELFTEST", "> STAT"], r.stdout
    replies = [ln.split(" ", 3)[2:] for ln in lines[1:] if not ln.startswith("> ")]
    assert [status for status, *_ in replies] == ["OK", "ACK", "OK", "OK", "OK"], r.stdout  # ... and BYE
    assert "model=tiny_fixture" in replies[0][1]
    out = dict(kv.split("=") for kv in replies[2][1].split())
    assert out["out"] == out["want"]  # the self-test passed
    assert "stack_used=" in replies[3][1]


def test_raw_mode_sends_lines_as_typed(build):
    """Without the framing the board refuses the line (its CRC check), which
    the monitor shows: the framing is what makes commands work."""
    with QemuSim(build.sim_elf, build.board, count_instructions=False) as sim:
        r = _monitor(sim.url, "1 2 STAT*00000000\n", "--raw")
    assert r.returncode == 0, r.stderr
    assert "ERR badcrc" in r.stdout and "> 1 2 STAT*00000000" in r.stdout


def test_no_port_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tinyfake", "monitor", "--port", str(tmp_path / "ttyNONE")],
                       input="", capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot open serial port" in r.stderr
    r = subprocess.run([sys.executable, "-m", "tinyfake", "monitor"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--port" in r.stderr and "Traceback" not in r.stderr
