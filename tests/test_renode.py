"""The real STM32H743 ELF (the file `tinyfake flash` writes) in Renode: it
boots on Renode's platform plus tinyfake's overlay, passes its self-test,
answers verify with TFLite Micro's outputs, and recovers from a damaged
link. Skipped, with the reason, only where no Renode can be found."""
import hashlib
import os
import re

import numpy as np
import pytest
from fixtures.faultproxy import FaultProxy
from fixtures.firmware_helpers import build_fixture, tiny_run
from fixtures.tiny_model import reference

import tinyfake.harness.renode as renode_mod
from tinyfake.cli import main
from tinyfake.errors import UserError
from tinyfake.firmware.boards import load_board
from tinyfake.harness.protocol import Device
from tinyfake.harness.renode import RenodeInstructions, RenodeSim, find_renode, renode_script
from tinyfake.harness.verify import verify_run


def _launcher():
    try:
        return find_renode()
    except UserError as exc:
        pytest.skip(str(exc))


def test_find_renode_order_and_errors(tmp_path, monkeypatch):
    fake = tmp_path / "renode"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_renode(str(fake)) == fake
    with pytest.raises(UserError, match="--renode .*not an executable"):
        find_renode(str(tmp_path / "missing"))
    monkeypatch.setenv("RENODE", str(fake))
    assert find_renode() == fake
    monkeypatch.setenv("RENODE", str(tmp_path / "missing"))
    with pytest.raises(UserError, match=r"\$RENODE=.*not an executable"):
        find_renode()
    monkeypatch.delenv("RENODE")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(renode_mod, "SHARED_RENODE", tmp_path / "no-shared")
    with pytest.raises(UserError, match="Renode not found; install Renode .*renode.io"):
        find_renode()


def test_instruction_counts_pair_the_marker_hooks(tmp_path):
    counts = RenodeInstructions(tmp_path / "insns.txt")
    assert counts() == []
    counts.path.write_text("begin 100\nend 350\nbegin 400\n")
    assert counts() == [250]  # the open pair waits for its end
    with open(counts.path, "a") as f:
        f.write("end 900\nbegin 1000\nend 1250\n")
    assert counts() == [500, 250] and counts.all == [250, 500, 250]


def test_renode_script_uses_the_platform_and_overlay(tmp_path):
    board = load_board("stm32h743")
    script = renode_script(board, tmp_path / "fw.elf", 4567)
    assert "LoadPlatformDescription @platforms/cpus/stm32h743.repl" in script
    assert "boards/renode/stm32h743.resc" in script  # the PWR_CSR1 tag the bring-up needs
    assert "connector Connect sysbus.usart3 console" in script
    assert script.index("include @") < script.index("LoadELF") < script.index("start")
    with pytest.raises(UserError, match="no Renode platform"):
        renode_script(load_board("mps2-an500"), tmp_path / "fw.elf", 4567)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return build_fixture(tmp_path_factory.mktemp("fw"))


def test_a_renode_that_fails_to_start_is_one_clear_error(build, tmp_path):
    broken = tmp_path / "renode"
    broken.write_text("#!/bin/sh\necho 'mono not found. Renode requires Mono 5.20 or newer.'\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(UserError, match="Renode failed to start the board: mono not found"):
        RenodeSim(build.elf, build.board, broken)
    truncated = tmp_path / "fw.elf"
    truncated.write_bytes(build.elf.read_bytes()[:64])
    with pytest.raises(UserError, match="not a readable ELF32 file"):
        RenodeSim(truncated, build.board, broken)


def test_verify_refuses_renode_with_a_port(tmp_path):
    with pytest.raises(UserError, match="--renode is a simulator"):
        verify_run(tmp_path, "stm32h743", port="loop://", renode="")


@pytest.mark.slow
@pytest.mark.parametrize("board", ["stm32h743", "stm32f746g-disco"])
def test_real_elf_boots_and_passes_selftest_in_renode(board, tmp_path, capsys):
    launcher = _launcher()
    run = tiny_run(tmp_path / "tiny")
    assert main(["simulate", "--board", board, "--renode", str(launcher),
                 "--run", str(run.root), "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    elf = run.fw / f"{board}.elf"
    assert f"sha256 {hashlib.sha256(elf.read_bytes()).hexdigest()[:16]}" in out
    assert "the ELF `tinyfake flash` writes" in out
    assert "self-test: ok" in out
    # The same code between the markers as QEMU's twin: the same count.
    renode_count = re.search(r"instructions per inference: ([\d,]+)", out).group(1)
    assert main(["simulate", "--board", board, "--run", str(run.root), "--repeat", "1"]) == 0
    assert f"instructions per inference: {renode_count} " in capsys.readouterr().out


@pytest.mark.slow
def test_verify_through_renode_equals_tflite_micro(tmp_path, capsys):
    _launcher()
    run = tiny_run(tmp_path / "tiny")
    assert main(["verify", "--board", "stm32h743", "--simulate", "--renode",
                 "--run", str(run.root), "--limit", "4"]) == 0
    out = capsys.readouterr().out
    assert "Renode stm32h743 platform" in out
    assert "device == host int8 (TFLite Micro) on 4/4" in out


@pytest.mark.slow
def test_damaged_link_to_renode_recovers(build):
    launcher = _launcher()
    with RenodeSim(build.elf, build.board, launcher) as sim:
        proxy = FaultProxy(sim.port, corrupt=0.002, seed=int(os.environ.get("TINYFAKE_FAULT_SEED", "0")) + 5)
        try:
            with Device(proxy.url, timeout=2.0, retries=10, expected_hash=build.model.hash) as dev:
                dev.hello()
                xs = np.random.default_rng(1).integers(-128, 128, (4, 16, 16, 3)).astype(np.int8)
                for x in xs:
                    assert dev.infer(x).output.tolist() == reference(x).tolist()
                assert proxy.injected["corrupt"] > 0
                assert dev.stats.resent + dev.stats.bad_lines + dev.stats.nacks > 0
        finally:
            proxy.close()
