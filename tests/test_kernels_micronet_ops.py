"""Operators MicroNet's int8 graph needs, one at a time: generated C vs the
TFLite Micro wheel, bit for bit (seeded sweeps, portable and DSP kernels).

GATHER (constant positions), TRANSPOSE, TRANSPOSE -> GATHER -> TRANSPOSE
(fused into one gather), MAXIMUM / MINIMUM (broadcast, constant operand),
grouped CONV_2D with one input channel per group (run as depthwise), and
grouped CONV_2D with several input channels per group (tfk_gconv.c: the
1x1 kernel and the general one), and DEPTHWISE_CONV_2D / one-channel-per-
group CONV_2D with any kernel, stride, padding and depth multiplier
(tfk_dwk.c).
"""
from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

pytest.importorskip("tflite_micro")

from test_kernels_ops import _q, _zp, assert_case_matches, compile_cases  # noqa: E402

from tinyfake.compiler.modelbuilder import T, build  # noqa: E402

SEEDS_PER_OP = 10


def _shape(rng, rank=4):
    return tuple([1] + [int(rng.integers(1, 7)) for _ in range(rank - 1)])


def gather_case(rng):
    shape = _shape(rng, int(rng.choice([2, 3, 4, 4])))
    axis = int(rng.integers(1, len(shape)))
    n = int(rng.integers(1, 9))
    idx = rng.integers(0, shape[axis], size=n).astype(np.int32)
    out = shape[:axis] + (n,) + shape[axis + 1:]
    s, zp = _q(rng, 0.005, 0.1), _zp(rng)
    ax = axis - len(shape) if rng.random() < 0.3 else axis   # negative axis too
    tensors = [T(shape, scale=s, zp=zp), T((n,), "int32", data=idx), T(out, scale=s, zp=zp)]
    return build([("GATHER", [0, 1], [2], {"axis": ax})], tensors, [0], [2])


def transpose_case(rng):
    rank = int(rng.choice([2, 3, 4, 4]))
    shape = tuple(int(rng.integers(1, 7)) for _ in range(rank))
    perm = [int(p) for p in rng.permutation(rank)]
    s, zp = _q(rng, 0.005, 0.1), _zp(rng)
    tensors = [T(shape, scale=s, zp=zp), T((rank,), "int32", data=np.array(perm, np.int32)),
               T(tuple(shape[p] for p in perm), scale=s, zp=zp)]
    return build([("TRANSPOSE", [0, 1], [2], {})], tensors, [0], [2])


def transpose_gather_case(rng):
    """onnx2tf's NCHW detour for a channel gather: one fused GATHER here."""
    n, h, w, c = _shape(rng)
    idx = rng.permutation(c).astype(np.int32) if rng.random() < 0.7 else \
        rng.integers(0, c, size=int(rng.integers(1, 9))).astype(np.int32)
    s, zp = _q(rng, 0.005, 0.1), _zp(rng)
    tensors = [T((n, h, w, c), scale=s, zp=zp),
               T((4,), "int32", data=np.array([0, 3, 1, 2], np.int32)),
               T((n, c, h, w), scale=s, zp=zp),
               T((idx.size,), "int32", data=idx),
               T((n, idx.size, h, w), scale=s, zp=zp),
               T((4,), "int32", data=np.array([0, 2, 3, 1], np.int32)),
               T((n, h, w, idx.size), scale=s, zp=zp)]
    ops = [("TRANSPOSE", [0, 1], [2], {}), ("GATHER", [2, 3], [4], {"axis": 1}),
           ("TRANSPOSE", [4, 5], [6], {})]
    return build(ops, tensors, [0], [6])


def minmax_case(rng, opname):
    """Both operands come from the one model input (QUANTIZE / MEAN for a
    broadcast operand), or one operand is a constant (a clip bound)."""
    full = _shape(rng)
    s_in = _q(rng, 0.01, 0.1)
    s, zp = _q(rng, 0.005, 0.1), _zp(rng)
    if rng.random() < 0.4:   # constant scalar / per-channel operand
        cshape = [(), (1,), (full[-1],), (1, 1, 1, full[-1])][int(rng.integers(0, 4))]
        cdata = rng.integers(-128, 128, size=cshape or ()).astype(np.int8)
        tensors = [T(full, scale=s_in, zp=_zp(rng)), T(full, scale=s, zp=zp),
                   T(cshape, scale=s, zp=zp, data=cdata), T(full, scale=s, zp=zp)]
        ins = [1, 2] if rng.random() < 0.5 else [2, 1]
        ops = [("QUANTIZE", [0], [1], {}), (opname, ins, [3], {})]
        return build(ops, tensors, [0], [3])
    small = [full, (1, 1, 1, full[-1]), (1, full[1], full[2], 1)][int(rng.integers(0, 3))]
    tensors = [T(full, scale=s_in, zp=_zp(rng)), T(full, scale=s, zp=zp),
               T(small, scale=s, zp=zp), T(full, scale=s, zp=zp)]
    ops = [("QUANTIZE", [0], [1], {})]
    if small == full:
        ops.append(("QUANTIZE", [0], [2], {}))
    else:
        axes = [d for d in range(4) if small[d] == 1 and full[d] != 1] or [1]
        tensors.append(T((len(axes),), "int32", data=np.array(axes, np.int32)))
        ops.append(("MEAN", [0, 4], [2], {"keepDims": True}))
    ops.append((opname, [1, 2] if rng.random() < 0.5 else [2, 1], [3], {}))
    return build(ops, tensors, [0], [3])


def grouped_conv_case(rng):
    """CONV_2D whose filter has depth 1 for an input of depth ic (ic groups)."""
    ih, iw, ic = int(rng.integers(1, 11)), int(rng.integers(1, 11)), int(rng.integers(2, 9))
    m = int(rng.integers(1, 4))
    oc = ic * m
    kh, kw = [(3, 1), (1, 3), (5, 1), (1, 5), (3, 3)][int(rng.integers(0, 5))]
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    pad = int(rng.integers(0, 2))
    eff_h = (ih + sh - 1) // sh if pad == 0 else (ih - kh + sh) // sh
    eff_w = (iw + sw - 1) // sw if pad == 0 else (iw - kw + sw) // sw
    if eff_h < 1 or eff_w < 1:
        pad, eff_h, eff_w = 0, (ih + sh - 1) // sh, (iw + sw - 1) // sw
    in_s, w_s = _q(rng, 0.005, 0.1), [_q(rng, 0.002, 0.05) for _ in range(oc)]
    out_s = float(np.float32(125 * math.sqrt(kh * kw) * in_s * float(np.mean(w_s)) * _q(rng, 0.3, 3)))
    tensors = [T((1, ih, iw, ic), scale=in_s, zp=_zp(rng)),
               T((oc, kh, kw, 1), scale=w_s, zp=0, axis=0,
                 data=rng.integers(-127, 128, size=(oc, kh, kw, 1)).astype(np.int8)),
               T((oc,), "int32", scale=[in_s * s for s in w_s],
                 data=rng.integers(-20000, 20000, size=oc).astype(np.int32)),
               T((1, eff_h, eff_w, oc), scale=out_s, zp=_zp(rng))]
    opts = {"padding": pad, "strideH": sh, "strideW": sw, "dilationHFactor": 1,
            "dilationWFactor": 1, "fusedActivationFunction": int(rng.choice([0, 1, 3]))}
    return build([("CONV_2D", [0, 1, 2], [3], opts)], tensors, [0], [3])


def multi_group_conv_case(rng, pointwise):
    """CONV_2D whose filter depth is ic / groups with 2+ channels per group:
    1x1 / stride 1 / no padding (the MicroNet form: tfk_grouped_conv1x1),
    or any kernel, stride, padding, dilation (tfk_conv2d with groups)."""
    groups, gi = int(rng.integers(2, 7)), int(rng.choice([2, 3, 4, 5, 6, 8, 10, 12, 16]))
    go = int(rng.integers(1, 7))
    ic, oc = groups * gi, groups * go
    n = 1 if pointwise or rng.random() < 0.8 else 2
    while True:
        ih, iw = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        if pointwise:
            kh = kw = sh = sw = dh = dw = 1
            pad = int(rng.integers(0, 2))
        else:
            kh, kw = [(3, 3), (1, 1), (3, 1), (1, 3), (5, 5), (2, 3)][int(rng.integers(0, 6))]
            sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
            dh, dw = (2, int(rng.integers(1, 3))) if rng.random() < 0.2 else (1, 1)
            pad = int(rng.integers(0, 2))
        oh = _out_size(pad, ih, kh, sh, dh)
        ow = _out_size(pad, iw, kw, sw, dw)
        if oh >= 1 and ow >= 1:
            break
    in_s = _q(rng, 0.005, 0.1)
    per_channel = rng.random() < 0.8
    w_s = [_q(rng, 0.002, 0.05) for _ in range(oc if per_channel else 1)]
    out_s = float(np.float32(125 * math.sqrt(kh * kw * gi) * in_s * float(np.mean(w_s)) * _q(rng, 0.3, 3)))
    wshape = (oc, kh, kw, gi)
    tensors = [T((n, ih, iw, ic), scale=in_s, zp=_zp(rng)),
               T(wshape, scale=w_s, zp=0, axis=0, data=rng.integers(-127, 128, size=wshape).astype(np.int8)),
               T((oc,), "int32", scale=[in_s * s for s in w_s],
                 data=rng.integers(-20000, 20000, size=oc).astype(np.int32)),
               T((n, oh, ow, oc), scale=out_s, zp=_zp(rng))]
    opts = {"padding": pad, "strideH": sh, "strideW": sw, "dilationHFactor": dh,
            "dilationWFactor": dw, "fusedActivationFunction": int(rng.choice([0, 1, 3]))}
    ins = [0, 1, -1] if rng.random() < 0.25 else [0, 1, 2]   # without bias too
    return build([("CONV_2D", ins, [3], opts)], tensors, [0], [3])


DWK_KERNELS = [(3, 1), (1, 3), (5, 1), (1, 5), (7, 1), (3, 3), (2, 3)]


def dwk_case(rng, grouped):
    """DEPTHWISE_CONV_2D, or CONV_2D with one input channel per group (the
    MicroNet form), any of DWK_KERNELS, strides 1-2 per axis, SAME / VALID,
    depth multiplier 1-4, sometimes after a fused PAD: tfk_dwk (tfk_dwk.c)
    from DWK_MIN_PIXELS output pixels on, except 3x3 depth multiplier 1
    (tfk_dw3x3)."""
    while True:
        # (grouped: 2+ input channels, one is a plain CONV_2D)
        ih, iw, ic = int(rng.integers(4, 22)), int(rng.integers(4, 22)), int(rng.integers(1 + grouped, 10))
        kh, kw = DWK_KERNELS[int(rng.integers(0, len(DWK_KERNELS)))]
        sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        pad = int(rng.integers(0, 2))
        pads = [int(v) for v in rng.integers(0, 3, size=4)] if rng.random() < 0.3 else [0, 0, 0, 0]
        ph, pw = ih + pads[0] + pads[1], iw + pads[2] + pads[3]
        oh, ow = _out_size(pad, ph, kh, sh, 1), _out_size(pad, pw, kw, sw, 1)
        if oh >= 1 and ow >= 1:
            break
    dm = int(rng.integers(1, 5))
    oc = ic * dm
    in_s, in_zp = _q(rng, 0.005, 0.1), _zp(rng)
    per_channel = rng.random() < 0.8
    w_s = [_q(rng, 0.002, 0.05) for _ in range(oc if per_channel else 1)]
    out_s = float(np.float32(125 * math.sqrt(kh * kw) * in_s * float(np.mean(w_s)) * _q(rng, 0.3, 3)))
    wshape = (oc, kh, kw, 1) if grouped else (1, kh, kw, oc)
    tensors = [T((1, ih, iw, ic), scale=in_s, zp=in_zp),
               T(wshape, scale=w_s, zp=0, axis=0 if grouped else 3,
                 data=rng.integers(-127, 128, size=wshape).astype(np.int8)),
               T((oc,), "int32", scale=[in_s * s for s in w_s],
                 data=rng.integers(-20000, 20000, size=oc).astype(np.int32)),
               T((1, oh, ow, oc), scale=out_s, zp=_zp(rng))]
    opts = {"padding": pad, "strideH": sh, "strideW": sw, "dilationHFactor": 1,
            "dilationWFactor": 1, "fusedActivationFunction": int(rng.choice([0, 1, 3]))}
    if grouped:
        name = "CONV_2D"
        ins = [0, 1, -1] if rng.random() < 0.25 else [0, 1, 2]   # without bias too
    else:  # TFLite Micro's depthwise Prepare needs a bias
        name, ins = "DEPTHWISE_CONV_2D", [0, 1, 2]
        opts["depthMultiplier"] = dm
    if pads == [0, 0, 0, 0]:
        return build([(name, ins, [3], opts)], tensors, [0], [3])
    tensors.append(T((1, ph, pw, ic), scale=in_s, zp=in_zp))  # 4: PAD output
    tensors.append(T((4, 2), "int32", data=np.array([[0, 0], pads[:2], pads[2:], [0, 0]], np.int32)))
    return build([("PAD", [0, 5], [4], {}), (name, [4] + ins[1:], [3], opts)], tensors, [0], [3])


def _out_size(pad, n, k, s, d):
    eff = (k - 1) * d + 1
    return (n + s - 1) // s if pad == 0 else (n - eff + s) // s


def _cases():
    gens = {
        "gather": gather_case,
        "transpose": transpose_case,
        "transpose_gather": transpose_gather_case,
        "maximum": lambda r: minmax_case(r, "MAXIMUM"),
        "minimum": lambda r: minmax_case(r, "MINIMUM"),
        "grouped_conv": grouped_conv_case,
        "gconv_1x1": lambda r: multi_group_conv_case(r, True),
        "gconv_kxk": lambda r: multi_group_conv_case(r, False),
        "dwk_depthwise": lambda r: dwk_case(r, False),
        "dwk_grouped": lambda r: dwk_case(r, True),
    }
    seeds = {"gconv_1x1": 2 * SEEDS_PER_OP, "gconv_kxk": 2 * SEEDS_PER_OP,
             "dwk_depthwise": 4 * SEEDS_PER_OP, "dwk_grouped": 4 * SEEDS_PER_OP}
    return [(f"{name}-{seed}", gen(np.random.default_rng([zlib.crc32(name.encode()), seed])))
            for name, gen in gens.items() for seed in range(seeds.get(name, SEEDS_PER_OP))]


CASES = _cases()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compile_cases(CASES, tmp_path_factory.mktemp("mnops"))


def test_fused_transpose_gather_is_one_gather(compiled):
    models, _, _ = compiled
    _, cm = models["transpose_gather-0"]
    kernels = [o.kernel for o in cm.ops]
    assert sum(k.startswith("tfk_gather") for k in kernels) == 1
    assert not any(k.startswith("tfk_transpose") for k in kernels)


def test_grouped_convs_use_the_grouped_kernels(compiled):
    models, _, _ = compiled
    kernels = {name: [o.kernel for o in cm.ops] for name, (_, cm) in models.items()}
    pw = [k for name, ks in kernels.items() if name.startswith("gconv_1x1") for k in ks]
    kxk = [k for name, ks in kernels.items() if name.startswith("gconv_kxk") for k in ks]
    assert all(k in ("tfk_grouped_conv1x1", "tfk_conv2d") for k in pw + kxk), set(pw + kxk)
    assert sum(k.startswith("tfk_grouped_conv1x1") for k in pw) >= len(pw) // 2
    assert sum(k.startswith("tfk_conv2d") for k in kxk) >= len(kxk) // 2
    # MACs are those of the grouped convolution (in_c / groups per output)
    _, cm = models["gconv_1x1-0"]
    from tinyfake.compiler.reader import read_tflite
    g = read_tflite(models["gconv_1x1-0"][0])
    w = g.tensors[g.operators[0].inputs[1]].shape
    out = g.tensors[g.operators[0].outputs[0]].shape
    assert cm.macs == int(np.prod(out)) * w[3]


def test_depthwise_convs_use_the_any_kernel_dw(compiled):
    """Every DEPTHWISE_CONV_2D / one-channel-per-group CONV_2D of the dwk
    sweeps with DWK_MIN_PIXELS output pixels or more runs tfk_dwk, except 3x3
    with depth multiplier 1 (tfk_dw3x3); smaller ones the generic kernel."""
    from tinyfake.compiler.graph import DWK_MIN_PIXELS
    from tinyfake.compiler.reader import read_tflite
    models, _, _ = compiled
    modes = set()
    for name, (path, cm) in models.items():
        if not name.startswith("dwk_"):
            continue
        g = read_tflite(path)
        conv = [op for op in g.operators if op.opcode != "PAD"][0]
        w = g.tensors[conv.inputs[1]].shape
        dm = g.tensors[conv.outputs[0]].shape[3] // g.tensors[conv.inputs[0]].shape[3]
        kernels = [o.kernel for o in cm.ops if o.kernel.startswith("tfk")]
        _, oh, ow, _ = g.tensors[conv.outputs[0]].shape
        if (w[1], w[2]) == (3, 3) and dm == 1:
            want = "tfk_dw3x3"
        elif oh * ow >= DWK_MIN_PIXELS:
            want = "tfk_dwk"
            modes.add(dm)
        else:
            want = "tfk_depthwise_conv2d"
        assert kernels == [want], (name, kernels)
    assert modes == {1, 2, 3, 4}


@pytest.mark.parametrize("dsp", [False, True], ids=["portable", "dsp"])
@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_op_matches_tflite_micro(compiled, case, dsp):
    assert_case_matches(compiled, CASES, case, dsp)
