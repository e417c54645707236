"""RGB + FFT + LBP input channels for any architecture: the ChannelInput
wrapper, `--channels`, the host's model images, the firmware's input stage,
and (slow) train -> export -> firmware -> QEMU, device == TFLite Micro."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from tinyfake.cli import main
from tinyfake.data.channels import model_images, with_channels
from tinyfake.data.tensors import quantize_input
from tinyfake.errors import UserError
from tinyfake.models import build_model
from tinyfake.models.channel_input import ChannelInput


def _faces(n=3, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _nchw(u8):
    return torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255.0


@pytest.mark.parametrize("arch", ["phinet", "binary", "micronet-m0"])
def test_forward_equals_forward_channels_on_host_channels(arch):
    torch.manual_seed(0)
    model = build_model(arch, 32, channels="rgb+fft+lbp").eval()
    assert isinstance(model, ChannelInput)
    with torch.no_grad():  # perturb the adapter so FFT/LBP matter
        model.adapter.weight.add_(0.1 * torch.randn_like(model.adapter.weight))
    u8 = _faces()
    x5 = _nchw(with_channels(u8))
    with torch.no_grad():
        a = model(_nchw(u8))
        b = model.forward_channels(x5)
        c = model.export_form()(x5)
    assert a.shape == (3, 1)
    assert torch.equal(a, b)
    assert torch.allclose(a, c, atol=1e-6)


def test_adapter_starts_as_rgb_pass_through():
    torch.manual_seed(0)
    backbone = build_model("phinet", 32).eval()
    model = ChannelInput(backbone).eval()
    x = _nchw(_faces())
    with torch.no_grad():
        assert torch.allclose(model(x), backbone(x), atol=1e-6)


def test_export_form_keeps_the_mode():
    model = build_model("phinet", 32, channels="rgb+fft+lbp").eval()
    assert not model.export_form().training and model.export_form().input_channels == 5


def test_sizes_the_fft_cannot_take_are_one_clear_error():
    with pytest.raises(UserError, match="power of two"):
        build_model("phinet", 96, channels="rgb+fft+lbp")
    with pytest.raises(UserError, match="input channels"):
        build_model("phinet", 64, channels="rgb+dct")


def test_cli_rejects_non_power_of_two_size_in_one_line(tmp_path, capsys):
    assert main(["train", "--channels", "rgb+fft+lbp", "--size", "96", "--epochs", "1",
                 "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "power of two" in err and "96" in err
    assert not any(tmp_path.iterdir())  # failed before any training


def test_old_binary_configs_still_build_and_load():
    from tinyfake.models.binary import BinaryNet

    assert type(build_model("binary", 64, channels="rgb")) is BinaryNet
    # a run saved by BinaryNet(channels="rgb+fft+lbp"): adapter.conv.*, layers at the top
    torch.manual_seed(1)
    new = build_model("binary", 64, channels="rgb+fft+lbp")
    legacy = {(f"adapter.conv.{k[len('adapter.'):]}" if k.startswith("adapter.") else k[len("backbone."):]): v
              for k, v in new.state_dict().items()}
    fresh = build_model("binary", 64, channels="rgb+fft+lbp")
    fresh.load_state_dict(legacy)
    for k, v in new.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_model_images():
    u8 = _faces(2, 16)
    assert model_images({"model": {"arch": "phinet"}}, u8) is u8  # configs without channels: rgb
    assert model_images({"model": {"channels": "rgb"}}, u8) is u8
    five = model_images("rgb+fft+lbp", u8)
    assert five.shape == (2, 16, 16, 5) and np.array_equal(five, with_channels(u8))
    assert model_images("rgb+fft+lbp", u8[:0]).shape == (0, 16, 16, 5)
    q = quantize_input(five, 1 / 255, -128)  # the device's byte - 128
    assert np.array_equal(q.view(np.uint8), five ^ 0x80)


def _info(c=5, n=64, scale=1 / 255, zp=-128):
    from tinyfake.firmware.model_header import ModelInfo
    return ModelInfo("m", "0" * 16, (n, n, c), n * n * c, 1, scale, zp, 0.1, 0, 1000, 100, 10, 3)


def test_input_stage_header_and_lut():
    from tinyfake.firmware.model_header import channel_scratch_bytes, input_lut, input_stage

    h, _ = input_stage(_info(c=3), "rgb")
    assert "TFK_INPUT_CHANNELS_FFT_LBP 0" in h and "TFK_LOAD_BYTES MODEL_INPUT_BYTES" in h
    h, c = input_stage(_info(), "rgb+fft+lbp")
    assert "TFK_INPUT_CHANNELS_FFT_LBP 1" in h and "TFK_LOAD_BYTES 12288" in h
    assert f"TFK_CHANNEL_SCRATCH_BYTES {channel_scratch_bytes(64)}" in h and "TFK_INPUT_OFFSET_128 1" in h
    assert channel_scratch_bytes(64) == 2 * 64 * 64 * 8 + 64 * 64
    # any other input quantization goes through the table, the host's arithmetic
    h, c = input_stage(_info(scale=0.0046, zp=-100), "rgb+fft+lbp")
    assert "TFK_INPUT_OFFSET_128 0" in h
    b = np.arange(256, dtype=np.uint8)
    assert np.array_equal(input_lut(0.0046, -100),
                          quantize_input(b.reshape(1, 16, 16, 1), 0.0046, -100).reshape(-1))
    with pytest.raises(UserError, match="NxNx5"):
        input_stage(_info(c=3), "rgb+fft+lbp")


def test_linker_script_overlays_the_scratch_on_the_arena():
    from tinyfake.firmware.boards import load_board
    from tinyfake.firmware.linker import linker_script

    board = load_board("stm32h743")
    plain = linker_script(board, board.regions, "DTCM", "board")
    assert ".channel_scratch" not in plain and "__tf_scratch_start" not in plain
    script = linker_script(board, board.regions, "DTCM", "board", scratch_bytes=69632)
    assert "SIZEOF(.arena) < 69632 ? 69632 - SIZEOF(.arena) : 0" in script
    assert "__tf_scratch_start = ADDR(.arena)" in script and "SIZEOF(.channel_scratch);" in script


@pytest.mark.slow
def test_channel_phinet_end_to_end_device_equals_tflite_micro(tmp_path):
    """train 1 epoch at 64 with --channels rgb+fft+lbp -> export -> compile ->
    firmware -> QEMU: the board gets RGB faces, computes the channels, and its
    outputs equal TFLite Micro on the host's five-channel input."""
    from tinyfake.export.tflite_int8 import io_quant

    def tf(*args, timeout=900):
        out = subprocess.run([sys.executable, "-m", "tinyfake", *args], cwd=tmp_path,
                             capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        return out.stdout

    tf("train", "--channels", "rgb+fft+lbp", "--size", "64", "--epochs", "1", "--name", "ch")
    run = tmp_path / "runs" / "ch"
    assert 'channels = "rgb+fft+lbp"' in (run / "config.toml").read_text()
    text = tf("build", "--model", str(run), "--limit", "6")
    inq, _ = io_quant(run / "model_int8.tflite")
    # onnx2tf quantizes the 5-channel input with 1/255 and -128: int8 = byte - 128
    assert inq.shape == (1, 64, 64, 5) and inq.zero_point == -128
    assert inq.scale == pytest.approx(1 / 255, rel=1e-6)
    assert "TFK_INPUT_OFFSET_128 1" in (run / "fw" / "obj-stm32h743" / "tf_input.h").read_text()
    report = json.loads((run / "report_limit6.json").read_text())
    v = report["verification"]
    assert v["n"] == 6 and v["identical"] == 6 and v["selftest"] == "ok"
    assert report["model"]["input_shape"] == [64, 64, 5] and report["model"]["channels"] == "rgb+fft+lbp"
    lat = report["latency"]
    assert lat["includes_input_channels"] and 0 < lat["channel_instructions"] < lat["instructions"]["min"]
    assert lat["repeatable"]
    ram_parts = [p for r in report["ram"]["regions"].values() for p in r["parts"]]
    assert "arena" in ram_parts
    assert "the board computes R, G, B, FFT, LBP" in text
    # eval: float, int8 reference and TFLite Micro all on the run's channels
    tf("eval", str(run), "--limit", "8")
    ev = json.loads((run / "eval_limit8.json").read_text())
    assert ev["n"] == 8 and ev["tflm_vs_ref_mismatched_images"] <= 8
