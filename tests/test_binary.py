"""Binary detector: training form, bit-packed integer reference, and the C
XNOR-popcount kernels (portable and Cortex-M7 variants) against it."""
import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from tinyfake.models import build_model, count_macs_params
from tinyfake.models.binary import (BIN_SHIFT, BinaryConv2d, binary_conv_ref, binary_dot,
                                    fold_binary_conv, pack_activations, pack_bits, weight_bytes)

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "firmware/binary/tfk_binary.c", ROOT / "firmware/binary/cortex_m/tfk_binary_m7.c"]
ARM = ["-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard", "-mthumb", "-O2",
       "-Wall", "-Wextra", "-Werror", "-std=c99"]
P = np.ctypeslib.ndpointer


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    so = tmp_path_factory.mktemp("bin") / "libtfkb.so"
    subprocess.run(["gcc", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    "-o", str(so), *map(str, SOURCES)], check=True)
    lib = ctypes.CDLL(str(so))
    lib.tfkb_pack.argtypes = [P(np.int8), ctypes.c_int, ctypes.c_int, P(np.int16), P(np.uint32)]
    for fn in (lib.tfkb_conv, lib.tfkb_conv_m7):
        fn.argtypes = [P(np.uint32), ctypes.c_int, ctypes.c_int, ctypes.c_int, P(np.uint32),
                       ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, P(np.int32),
                       P(np.int32), ctypes.c_int, P(np.int8)]
    return lib


def c_conv(fn, xbits, channels, layer, oc):
    h, w, _ = xbits.shape
    k, s, p = layer["wbits"].shape[1], layer["stride"], layer["pad"]
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.zeros((oh, ow, oc), np.int8)
    fn(np.ascontiguousarray(xbits), h, w, channels, np.ascontiguousarray(layer["wbits"]), oc, k, s, p,
       layer["mult"], layer["bias"], layer["shift"], out)
    return out


def random_layer(rng, c, oc, k, stride):
    return dict(threshold=rng.integers(-20, 20, c).astype(np.int16),
                wbits=pack_bits(rng.random((oc, k, k, c)) < 0.5),
                mult=rng.integers(-(1 << 16), 1 << 16, oc).astype(np.int32),
                bias=rng.integers(-(1 << 24), 1 << 24, oc).astype(np.int32),
                stride=stride, pad=k // 2, shift=BIN_SHIFT)


def test_packing_layout():
    bits = np.zeros(40, bool)
    bits[[0, 5, 31, 32, 39]] = True
    assert pack_bits(bits).tolist() == [(1 << 0) | (1 << 5) | (1 << 31), (1 << 0) | (1 << 7)]
    x = np.array([[[-5, 0, 7]]], np.int8)
    assert pack_activations(x, np.array([0, 0, 8], np.int16)).tolist() == [[[0b010]]]


def test_dot_equals_float_conv_on_signs():
    """d = 2*popcount(xnor) - n is the +-1 convolution with zero padding."""
    rng = np.random.default_rng(1)
    xs = np.where(rng.random((7, 9, 37)) < 0.5, 1, -1)
    ws = np.where(rng.random((5, 37, 3, 3)) < 0.5, 1, -1)
    d = binary_dot(pack_bits(xs > 0), pack_bits(np.transpose(ws, (0, 2, 3, 1)) > 0), 37, 2, 1)
    want = torch.nn.functional.conv2d(torch.tensor(xs, dtype=torch.float64).permute(2, 0, 1)[None],
                                      torch.tensor(ws, dtype=torch.float64), stride=2, padding=1)
    assert np.array_equal(d, want[0].permute(1, 2, 0).numpy().astype(np.int32))


@pytest.mark.parametrize("h,w,c,oc,k,stride", [(8, 8, 16, 32, 3, 1), (9, 7, 70, 24, 3, 2),
                                               (5, 6, 64, 64, 1, 1), (6, 6, 1000, 8, 3, 1)])
def test_c_kernels_equal_reference_random(lib, h, w, c, oc, k, stride):
    rng = np.random.default_rng(h * 100 + c)
    x = rng.integers(-128, 128, (h, w, c)).astype(np.int8)
    layer = random_layer(rng, c, oc, k, stride)
    want = binary_conv_ref(x, **{k_: layer[k_] for k_ in ("threshold", "wbits", "mult", "bias",
                                                         "stride", "pad", "shift")})
    xbits = np.zeros((h, w, (c + 31) // 32), np.uint32)
    lib.tfkb_pack(np.ascontiguousarray(x), h * w, c, layer["threshold"], xbits)
    assert np.array_equal(xbits, pack_activations(x, layer["threshold"]))
    assert np.array_equal(c_conv(lib.tfkb_conv, xbits, c, layer, oc), want)
    assert np.array_equal(c_conv(lib.tfkb_conv_m7, xbits, c, layer, oc), want)
    assert len(np.unique(want)) > 10  # not saturated: the test can see differences


def _real_faces(n=4, size=64):
    from skimage import data
    from skimage.transform import resize

    faces = [resize(data.astronaut()[:256, 128:384], (size, size), anti_aliasing=True)]
    for f in data.lfw_subset()[: n - 1]:
        faces.append(np.repeat(resize(f, (size, size))[..., None], 3, -1))
    return (np.clip(np.stack(faces), 0, 1) * 255).astype(np.uint8)


def test_c_kernels_equal_reference_on_real_faces(lib):
    """Real activations: faces through a BinaryNet's stem (int8-quantized),
    then each binary conv of the first block folded to integers."""
    torch.manual_seed(0)
    net = build_model("binary", 64).eval()
    faces = torch.from_numpy(_real_faces()).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        act = net.stem(faces).permute(0, 2, 3, 1).numpy()
    s_in = float(act.max()) / 255
    q = np.clip(np.round(act / s_in) - 128, -128, 127).astype(np.int8)
    block, zp = net.blocks[0], -128
    for conv, bn in ((block.conv3, block.bn3), (block.conv1, block.bn1)):
        with torch.no_grad():
            conv.threshold.uniform_(0.0, 0.3)  # a trained RSign is not all zero
        layer = fold_binary_conv(conv, bn, s_in, zp, 0.05, 0)
        outs = []
        for img in q:
            want = binary_conv_ref(img, layer["threshold"], layer["wbits"], layer["mult"],
                                   layer["bias"], layer["stride"], layer["pad"])
            xbits = pack_activations(img, layer["threshold"])
            assert np.array_equal(c_conv(lib.tfkb_conv, xbits, conv.in_channels, layer,
                                         conv.out_channels), want)
            assert np.array_equal(c_conv(lib.tfkb_conv_m7, xbits, conv.in_channels, layer,
                                         conv.out_channels), want)
            outs.append(want)
        q, s_in, zp = np.stack(outs), 0.05, 0  # the next layer reads this one's output


def test_folded_layer_matches_float_layer():
    """The integer layer reproduces the float BinaryConv2d + BN up to output rounding."""
    torch.manual_seed(0)
    conv, bn = BinaryConv2d(40, 24, 3, 1), torch.nn.BatchNorm2d(24)
    with torch.no_grad():
        bn.running_mean.uniform_(-5, 5)
        bn.running_var.uniform_(1, 4)
        conv.threshold.uniform_(-0.5, 0.5)
    bn.eval()
    s_in, zp_in, s_out, zp_out = 0.02, 3, 0.05, -2
    xq = np.random.default_rng(2).integers(-128, 128, (10, 10, 40)).astype(np.int8)
    xf = torch.from_numpy((xq.astype(np.float32) - zp_in) * s_in).permute(2, 0, 1)[None]
    with torch.no_grad():
        yf = bn(conv(xf))[0].permute(1, 2, 0).numpy()
    layer = fold_binary_conv(conv, bn, s_in, zp_in, s_out, zp_out)
    got = binary_conv_ref(xq, layer["threshold"], layer["wbits"], layer["mult"], layer["bias"], 1, 1)
    want = np.clip(np.round(yf / s_out) + zp_out, -128, 127)
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


def test_binary_net_with_fft_lbp_channels():
    net = build_model("binary", 64, channels="rgb+fft+lbp")
    assert net(torch.rand(2, 3, 64, 64)).shape == (2, 1)


@pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("src", SOURCES + [ROOT / "firmware/binary/channels.c"], ids=lambda p: p.name)
def test_sources_compile_for_cortex_m7(src, tmp_path):
    subprocess.run(["arm-none-eabi-gcc", *ARM, "-c", str(src), "-o", str(tmp_path / "x.o")], check=True)
