"""The main job end to end: `tinyfake build` on the embedded default data."""
import json
import subprocess
import sys

import pytest

from tinyfake.cli import main


@pytest.mark.slow
def test_build_runs_every_stage_and_reports(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "tinyfake", "build", "--board", "stm32h743", "--name", "ci",
         "--epochs", "1", "--limit", "6"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run = tmp_path / "runs" / "ci"
    for f in ("config.toml", "model.pt", "model.onnx", "model_int8.tflite", "model_data.cc",
              "gen/model.c", "fw/stm32h743.elf", "fw/stm32h743.bin", "fw/stm32h743-sim.elf"):
        assert (run / f).exists(), f
    report = json.loads((run / "report_limit6.json").read_text())
    v = report["verification"]
    assert v["n"] == 6 and v["identical"] == 6
    assert report["link"]["wire"]["wire_per_input_byte"] <= 1.1  # binary LOAD frames, 64x64x3 faces
    assert "instructions per inference in simulation" in out.stdout
    assert "DTCM" in out.stdout and "MACs" in out.stdout
    md = (run / "report_limit6.md").read_text()
    assert report["profile"]["ops"] and "## Instructions per operator type" in md and "## Layers" in md
    for png in ("memory.png", "roc_device_limit6.png", "training.png", "profile.png"):
        assert (run / png).stat().st_size > 0 and f"]({png})" in md, png


def test_build_rejects_unknown_board(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tinyfake", "build", "--board", "nope"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "nope" in out.stderr


@pytest.mark.slow
def test_build_binary_net_runs_bit_packed_and_equals_tflite_micro(tmp_path):
    """`tinyfake build --arch binary --flash`: the int8 form compiled onto the
    binary kernels, verified on the simulated board against TFLite Micro,
    then flashed (no board here: pyOCD's one-line refusal)."""
    out = subprocess.run(
        [sys.executable, "-m", "tinyfake", "build", "--arch", "binary", "--size", "32", "--name", "bin",
         "--epochs", "1", "--limit", "6", "--flash"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    # Every stage ran and passed; then --flash reached the real pyOCD, which
    # finds no probe on a machine without a board: one line, exit 2.
    assert out.returncode == 2, out.stdout[-3000:] + out.stderr[-3000:]
    assert "== flash:" in out.stdout and "fw/stm32h743.elf -> stm32h743 with pyocd" in out.stdout
    assert out.stderr.strip().splitlines() == [
        "tinyfake: error: no debug probe or board found by pyocd: connect the board's ST-LINK USB port "
        "(and check the probe's USB permissions / udev rules)"], out.stderr
    run = tmp_path / "runs" / "bin"
    assert not (run / "model.onnx").exists()  # written directly, not through ONNX
    model_c = (run / "gen" / "model.c").read_text()
    assert model_c.count("tfkb_conv(") == 8 and "tfkb_pack(" in model_c
    v = json.loads((run / "report_limit6.json").read_text())["verification"]
    assert v["n"] == 6 and v["identical"] == 6


@pytest.mark.parametrize("argv, message", [
    (["--limit", "0"], "--limit must be at least 1"),
    (["--name", "../out"], "must be a plain folder name"),
    (["--flash", "--board", "mps2-an500"], "mps2-an500 has no [flash.pyocd] settings"),
    (["--with", "openocd"], "add --flash"),
])
def test_build_checks_cheap_options_before_training(capsys, argv, message):
    assert main(["build", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
