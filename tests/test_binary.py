"""Binary detector: training form, the integer reference of a binary conv
(tinyfake.compiler.binary), its int8 TFLite form, and the compiled
XNOR-popcount kernels (portable and Cortex-M7 forms, built for the host):
reference == TFLite Micro == compiled C, bit for bit."""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from tinyfake.compiler.api import compile_model
from tinyfake.compiler.binary import binary_conv_ref, binary_dot, pack_activations, pack_bits
from tinyfake.compiler.hostbuild import HostModel, build_host
from tinyfake.export.binary_tflite import (range_quant, binary_layer_params, binary_layer_tflite,
                                           binary_tflite, trace_matches)
from tinyfake.export.tflm import tflm_outputs
from tinyfake.models import build_model, count_macs_params
from tinyfake.models.binary import BinaryConv2d, weight_bytes
from tinyfake.models.binary_device import perturbed_binary_net, random_layer_spec, real_faces

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "firmware/runtime/tfk_binary.c", ROOT / "firmware/runtime/cortex_m/tfk_binary_m7.c",
           ROOT / "firmware/runtime/tfk_prelu.c"]
ARM = ["-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard", "-mthumb", "-O2",
       "-Wall", "-Wextra", "-Werror", "-std=c99", f"-I{ROOT / 'firmware/runtime'}"]


def compiled_outputs(tflite: Path, out_dir: Path, x: np.ndarray, binary_kernels: bool = True) -> dict:
    """int8 inputs (N, ...) -> {"portable": outs, "m7": outs} of tinyfake's compiled C."""
    cm = compile_model(tflite, out_dir, binary_kernels=binary_kernels)
    result = {"kernels": [o.kernel for o in cm.ops], "compiled": cm}
    for variant, dsp in (("portable", False), ("m7", True)):
        run = HostModel(build_host(cm.out_dir, dsp=dsp), cm.input_bytes, cm.output_bytes)
        result[variant] = np.stack([run.run(np.ascontiguousarray(v)) for v in x])
    return result


def test_packing_layout():
    bits = np.zeros(40, bool)
    bits[[0, 5, 31, 32, 39]] = True
    assert pack_bits(bits).tolist() == [(1 << 0) | (1 << 5) | (1 << 31), (1 << 0) | (1 << 7)]
    x = np.array([[[-5, 0, 7]]], np.int8)
    assert pack_activations(x, np.array([0, 0, 8], np.int16)).tolist() == [[[0b010]]]


def test_dot_equals_float_conv_on_signs():
    """d = n - 2*popcount(xor) is the +-1 convolution with zero padding."""
    rng = np.random.default_rng(1)
    xs = np.where(rng.random((7, 9, 37)) < 0.5, 1, -1)
    ws = np.where(rng.random((5, 37, 3, 3)) < 0.5, 1, -1)
    d = binary_dot(pack_bits(xs > 0), pack_bits(np.transpose(ws, (0, 2, 3, 1)) > 0), 37, 2, 1, 1, 4, 5)
    want = torch.nn.functional.conv2d(torch.tensor(xs, dtype=torch.float64).permute(2, 0, 1)[None],
                                      torch.tensor(ws, dtype=torch.float64), stride=2, padding=1)
    assert np.array_equal(d, want[0].permute(1, 2, 0).numpy().astype(np.int32))


@pytest.mark.parametrize("h,w,c,oc,k,stride", [(8, 8, 16, 32, 3, 1), (9, 7, 70, 24, 3, 2),
                                               (5, 6, 64, 64, 1, 1), (6, 6, 1000, 8, 3, 1),
                                               (7, 5, 33, 5, 3, 1), (12, 10, 96, 17, 5, 2)])
def test_layer_reference_equals_tflm_and_compiled_c(tmp_path, h, w, c, oc, k, stride):
    rng = np.random.default_rng(h * 100 + c)
    spec = random_layer_spec(rng, h, w, c, oc, k, stride)
    data, layer = binary_layer_tflite(**spec)
    path = tmp_path / "layer.tflite"
    path.write_bytes(data)
    x = rng.integers(-128, 128, (3, h, w, c)).astype(np.int8)
    want = np.stack([binary_conv_ref(v, layer) for v in x])
    assert len(np.unique(want)) > 10  # not saturated: the check can see differences
    assert np.array_equal(tflm_outputs(path, x), want)
    got = compiled_outputs(path, tmp_path / "gen", x)
    assert "tfkb_conv" in got["kernels"] and "tfkb_pack" in got["kernels"]
    assert np.array_equal(got["portable"].reshape(want.shape), want)
    assert np.array_equal(got["m7"].reshape(want.shape), want)


def test_layer_with_a_multiplier_outside_the_fast_form(tmp_path):
    """A channel whose multiplier needs a right shift > 22 takes the reference
    requantization (mult/shift) path; results stay exact."""
    rng = np.random.default_rng(7)
    spec = random_layer_spec(rng, 6, 6, 32, 8, 3, 1)
    spec["wscale"][0] = 1e-9 * spec["out_q"][0]
    data, layer = binary_layer_tflite(**spec)
    path = tmp_path / "layer.tflite"
    path.write_bytes(data)
    x = rng.integers(-128, 128, (2, 6, 6, 32)).astype(np.int8)
    want = np.stack([binary_conv_ref(v, layer) for v in x])
    assert np.array_equal(tflm_outputs(path, x), want)
    got = compiled_outputs(path, tmp_path / "gen", x)
    assert "_rq[" not in (tmp_path / "gen" / "model.c").read_text()
    assert np.array_equal(got["portable"].reshape(want.shape), want)
    assert np.array_equal(got["m7"].reshape(want.shape), want)


def _real_faces(n=4, size=64):
    return real_faces(size, n).astype(np.float32) / 255


def test_layer_on_real_faces(tmp_path):
    """Real activations: faces through a BinaryNet's stem, quantized, into its
    first binary conv: reference == TFLite Micro == compiled C."""
    net = perturbed_binary_net(64)
    faces = torch.from_numpy(_real_faces()).permute(0, 3, 1, 2)
    with torch.no_grad():
        act = net.stem(faces).permute(0, 2, 3, 1).numpy()
    in_q = range_quant(act.min(), act.max())
    x = np.clip(np.round(act / in_q[0]) + in_q[1], -128, 127).astype(np.int8)
    b = net.blocks[0]
    params = binary_layer_params(b.conv3, b.bn3, in_q)
    data, layer = binary_layer_tflite(x.shape[1:], in_q, out_q=(0.05, 0), **params)
    path = tmp_path / "face_layer.tflite"
    path.write_bytes(data)
    want = np.stack([binary_conv_ref(v, layer) for v in x])
    assert len(np.unique(want)) > 10
    assert np.array_equal(tflm_outputs(path, x), want)
    got = compiled_outputs(path, tmp_path / "gen", x)
    assert np.array_equal(got["portable"].reshape(want.shape), want)
    assert np.array_equal(got["m7"].reshape(want.shape), want)


def test_whole_network_int8_form(tmp_path):
    """The exported int8 form: TFLite Micro == compiled C with binary kernels
    == compiled C with int8 kernels, on real faces; its weights take about
    4x less flash than the int8 twin's (stem and head are int8 in both)."""
    net = perturbed_binary_net(64)
    faces = _real_faces(8)
    assert trace_matches(net, torch.from_numpy(faces).permute(0, 3, 1, 2)) == 0.0
    path, twin = tmp_path / "bin.tflite", tmp_path / "twin.tflite"
    path.write_bytes(binary_tflite(net, faces))
    twin.write_bytes(binary_tflite(net, faces, twin=True))
    u8 = (faces * 255).round().astype(np.uint8)
    x = (u8.astype(np.int16) - 128).astype(np.int8)
    want = tflm_outputs(path, u8)
    binary = compiled_outputs(path, tmp_path / "gen_bin", x)
    int8 = compiled_outputs(path, tmp_path / "gen_int8", x, binary_kernels=False)
    for got in (binary["portable"], binary["m7"], int8["portable"], int8["m7"]):
        assert np.array_equal(got.reshape(want.shape), want)
    assert binary["kernels"].count("tfkb_conv") == 2 * len(net.blocks)
    assert "tfkb_conv" not in int8["kernels"]
    tw = compile_model(twin, tmp_path / "gen_twin")
    assert tw.weight_bytes >= 3.5 * binary["compiled"].weight_bytes


def test_folded_layer_matches_float_layer():
    """The integer layer reproduces the float BinaryConv2d + BN up to output rounding."""
    torch.manual_seed(0)
    conv, bn = BinaryConv2d(40, 24, 3, 1), torch.nn.BatchNorm2d(24)
    with torch.no_grad():
        bn.running_mean.uniform_(-5, 5)
        bn.running_var.uniform_(1, 4)
        conv.threshold.uniform_(-0.5, 0.5)
    bn.eval()
    in_q, out_q = (0.02, 3), (0.05, -2)
    xq = np.random.default_rng(2).integers(-128, 128, (10, 10, 40)).astype(np.int8)
    xf = torch.from_numpy((xq.astype(np.float32) - in_q[1]) * in_q[0]).permute(2, 0, 1)[None]
    with torch.no_grad():
        yf = bn(conv(xf))[0].permute(1, 2, 0).numpy()
    _, layer = binary_layer_tflite(xq.shape, in_q, out_q=out_q, **binary_layer_params(conv, bn, in_q))
    got = binary_conv_ref(xq, layer)
    want = np.clip(np.round(yf / out_q[0]) + out_q[1], -128, 127)
    assert np.abs(got.astype(int) - want).max() <= 1


def test_binary_net_trains_and_is_small():
    torch.manual_seed(0)
    net = build_model("binary", 64)
    macs, params = count_macs_params(net, (3, 64, 64))
    assert 50_000 < params < 200_000
    small = build_model("binary", 32)
    x, y = torch.rand(8, 3, 32, 32), torch.tensor([0., 1.] * 4)[:, None]
    opt = torch.optim.Adam(small.parameters(), 1e-2)
    losses = []
    for _ in range(10):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(small(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert small.blocks[1].conv3.weight.grad.abs().sum() > 0  # STE passes gradients
    wb = weight_bytes(net)
    assert wb["int8"] / wb["binary"] >= 4.0


@pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("src", SOURCES + [ROOT / "firmware/binary/channels.c"], ids=lambda p: p.name)
@pytest.mark.parametrize("dsp", [0, 1])
def test_sources_compile_for_cortex_m7(src, dsp, tmp_path):
    subprocess.run(["arm-none-eabi-gcc", *ARM, f"-DTFK_USE_DSP={dsp}", "-c", str(src),
                    "-o", str(tmp_path / "x.o")], check=True)


def test_fft_lbp_binary_net_int8_form(tmp_path):
    """A binary net behind the FFT/LBP input adapter: its int8 form takes the
    five channels (the adapter is its first conv); TFLite Micro == compiled C."""
    from tinyfake.data.channels import with_channels

    torch.manual_seed(0)
    model = build_model("binary", 32, channels="rgb+fft+lbp").eval()
    rgb = real_faces(32, 4)
    x5 = with_channels(rgb)
    assert trace_matches(model, torch.from_numpy(x5.astype(np.float32) / 255).permute(0, 3, 1, 2)) == 0.0
    path = tmp_path / "bin5.tflite"
    path.write_bytes(binary_tflite(model, x5.astype(np.float32) / 255))
    want = tflm_outputs(path, x5)
    got = compiled_outputs(path, tmp_path / "gen", (x5.astype(np.int16) - 128).astype(np.int8))
    assert got["kernels"].count("tfkb_conv") == 2 * len(model.backbone.blocks)
    assert np.array_equal(got["m7"].reshape(want.shape), want)
    assert np.array_equal(got["portable"].reshape(want.shape), want)
