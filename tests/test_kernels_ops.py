"""Per-operator sweeps: generated C vs the TFLite Micro wheel, bit for bit.

Each case is a one-operator (or short chain) int8 model written directly as
a flatbuffer with seeded random shapes, quantization parameters, weights and
inputs. All cases are compiled, linked into one host library per kernel
variant (portable C, and the Cortex-M7 DSP kernels with emulated
intrinsics), and compared with the oracle on several inputs.
"""
from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

pytest.importorskip("tflite_micro")

from tinyfake.compiler import compile_model  # noqa: E402
from tinyfake.compiler.hostbuild import HostModel, build_host_many  # noqa: E402
from tinyfake.compiler.modelbuilder import T, build  # noqa: E402
from tinyfake.compiler.oracle import run_isolated  # noqa: E402

SEEDS_PER_OP = 12


def _q(rng, lo, hi):
    return float(np.float32(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def _zp(rng):
    return int(rng.integers(-128, 128))


def _w(rng, shape):
    return rng.integers(-127, 128, size=shape).astype(np.int8)


def _out_size(pad, n, k, s, d):
    eff = (k - 1) * d + 1
    return (n + s - 1) // s if pad == 0 else (n - eff + s) // s


def conv_case(rng, depthwise=False, fuse_pad=False):
    while True:
        n = int(rng.choice([1, 1, 1, 2]))
        ih, iw = int(rng.integers(1, 13)), int(rng.integers(1, 13))
        ic = int(rng.integers(1, 10))
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        dh, dw = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if rng.random() < 0.3 else (1, 1)
        pad = int(rng.integers(0, 2))
        pads = [int(v) for v in rng.integers(0, 3, size=4)] if fuse_pad else [0, 0, 0, 0]
        ph, pw = ih + pads[0] + pads[1], iw + pads[2] + pads[3]
        oh, ow = _out_size(pad, ph, kh, sh, dh), _out_size(pad, pw, kw, sw, dw)
        if oh >= 1 and ow >= 1:
            break
    dm = int(rng.integers(1, 4)) if depthwise else 1
    oc = ic * dm if depthwise else int(rng.integers(1, 10))
    in_s, in_zp = _q(rng, 0.005, 0.1), _zp(rng)
    per_channel = rng.random() < 0.8
    w_s = [_q(rng, 0.002, 0.05) for _ in range(oc if per_channel else 1)]
    k = kh * kw * (1 if depthwise else ic)
    out_s = float(np.float32(125 * math.sqrt(k) * in_s * float(np.mean(w_s)) * _q(rng, 0.3, 3)))
    wshape = (1, kh, kw, oc) if depthwise else (oc, kh, kw, ic)
    tensors = [T((n, ih, iw, ic), scale=in_s, zp=in_zp),
               T(wshape, scale=w_s, zp=0, axis=3 if depthwise else 0, data=_w(rng, wshape)),
               T((oc,), "int32", scale=[in_s * s for s in w_s], zp=0,
                 data=rng.integers(-20000, 20000, size=oc).astype(np.int32)),
               T((n, oh, ow, oc), scale=out_s, zp=_zp(rng))]
    opts = {"padding": pad, "strideH": sh, "strideW": sw, "dilationHFactor": dh,
            "dilationWFactor": dw, "fusedActivationFunction": int(rng.choice([0, 0, 1, 3]))}
    name = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
    if depthwise:
        opts["depthMultiplier"] = dm
    # no bias (TFLite Micro's depthwise Prepare crashes without one)
    if not depthwise and rng.random() < 0.15:
        ins = [0, 1, -1]
    else:
        ins = [0, 1, 2]
    if not fuse_pad:
        return build([(name, ins, [3], opts)], tensors, [0], [3])
    tensors.append(T((n, ph, pw, ic), scale=in_s, zp=in_zp))  # 4: PAD output
    tensors.append(T((4, 2), "int32", data=np.array([[0, 0], pads[:2], pads[2:], [0, 0]], np.int32)))
    return build([("PAD", [0, 5], [4], {}), (name, [4] + ins[1:], [3], opts)], tensors, [0], [3])


def fc_case(rng):
    b, depth, od = int(rng.integers(1, 4)), int(rng.integers(1, 65)), int(rng.integers(1, 17))
    in_s, per_channel = _q(rng, 0.005, 0.1), rng.random() < 0.3
    w_s = [_q(rng, 0.002, 0.05) for _ in range(od if per_channel else 1)]
    out_s = float(np.float32(125 * math.sqrt(depth) * in_s * float(np.mean(w_s)) * _q(rng, 0.3, 3)))
    in_shape = (1, 1, 1, depth) if b == 1 and rng.random() < 0.5 else (b, depth)
    tensors = [T(in_shape, scale=in_s, zp=_zp(rng)),
               T((od, depth), scale=w_s, zp=0, data=_w(rng, (od, depth))),
               T((od,), "int32", scale=[in_s * s for s in w_s],
                 data=rng.integers(-20000, 20000, size=od).astype(np.int32)),
               T((b, od), scale=out_s, zp=_zp(rng))]
    opts = {"fusedActivationFunction": int(rng.choice([0, 1, 3]))}
    return build([("FULLY_CONNECTED", [0, 1, 2], [3], opts)], tensors, [0], [3])


def _bshapes(rng):
    h, w, c = int(rng.integers(1, 7)), int(rng.integers(1, 7)), int(rng.integers(1, 9))
    full = (1, h, w, c)
    other = [full, (1, 1, 1, c), (1, h, w, 1), (1, 1, w, c), (1, h, 1, c), (c,)][int(rng.integers(0, 6))]
    return (full, other) if rng.random() < 0.5 else (other, full)


def _binary_chain(opname, tensors, rng):
    """model_invoke takes one input, so both operands come from it: the big one
    through a requantization, the small (broadcast) one through a MEAN over the
    broadcast axes. Also exercises in-place execution of the binary op."""
    a, b, out = tensors
    n_a, n_b = int(np.prod(a.shape)), int(np.prod(b.shape))
    if n_a == n_b:
        b.shape = a.shape
    big_i, small_i = (1, 2) if n_a >= n_b else (2, 1)
    big, small = (a, b) if big_i == 1 else (b, a)
    ts = [T(big.shape, scale=_q(rng, 0.01, 0.1), zp=_zp(rng)), a, b, out]
    ops = [("QUANTIZE", [0], [big_i], {})]
    if n_a == n_b:
        ops.append(("QUANTIZE", [0], [small_i], {}))
    else:
        s4 = [1] * (4 - len(small.shape)) + list(small.shape)
        axes = [d for d in range(4) if s4[d] == 1 and big.shape[d] != 1]
        ts.append(T((len(axes),), "int32", data=np.array(axes, np.int32)))   # 4: axes
        if tuple(s4) == tuple(small.shape):
            ops.append(("MEAN", [0, 4], [small_i], {"keepDims": True}))
        else:
            ts.append(T(tuple(s4), scale=small.scale, zp=small.zp))          # 5: mean out
            ts.append(T((len(small.shape),), "int32", data=np.array(small.shape, np.int32)))
            ops.append(("MEAN", [0, 4], [5], {"keepDims": True}))
            ops.append(("RESHAPE", [5, 6], [small_i], {"newShape": list(small.shape)}))
    ops.append((opname, [1, 2], [3], {"fusedActivationFunction": int(rng.choice([0, 1, 3]))}))
    return build(ops, ts, [0], [3])


def mean_case(rng):
    rank = int(rng.choice([2, 3, 4, 4, 4]))
    shape = tuple(int(rng.integers(1, 8)) for _ in range(rank))
    if rank == 4 and rng.random() < 0.5:
        axes = [1, 2]
    else:
        start = int(rng.integers(0, rank))
        stop = int(rng.integers(start, rank))
        axes = list(range(start, stop + 1))
    if rng.random() < 0.3:
        axes = [a - rank for a in axes]
    keep = bool(rng.random() < 0.6)
    norm = [a % rank for a in axes]
    out = tuple((1 if d in norm else s) for d, s in enumerate(shape) if keep or d not in norm) or (1,)
    # zero points near 0 keep the mean of random inputs inside the output range
    in_s, in_zp = _q(rng, 0.005, 0.2), int(rng.integers(-10, 11))
    same = rng.random() < 0.3
    out_s, out_zp = (in_s, in_zp) if same else (float(np.float32(in_s * _q(rng, 0.3, 3))),
                                                 int(rng.integers(-40, 41)))
    tensors = [T(shape, scale=in_s, zp=in_zp), T((len(axes),), "int32", data=np.array(axes, np.int32)),
               T(out, scale=out_s, zp=out_zp)]
    return build([("MEAN", [0, 1], [2], {"keepDims": keep})], tensors, [0], [2])


def pool_case(rng, opname):
    while True:
        n, ih, iw, c = int(rng.choice([1, 2])), int(rng.integers(1, 12)), int(rng.integers(1, 12)), int(rng.integers(1, 6))
        kh, kw, sh, sw = (int(rng.integers(1, 5)) for _ in range(4))
        pad = int(rng.integers(0, 2))
        oh, ow = _out_size(pad, ih, kh, sh, 1), _out_size(pad, iw, kw, sw, 1)
        if oh >= 1 and ow >= 1:
            break
    s, zp = _q(rng, 0.005, 0.2), _zp(rng)
    tensors = [T((n, ih, iw, c), scale=s, zp=zp), T((n, oh, ow, c), scale=s, zp=zp)]
    opts = {"padding": pad, "strideH": sh, "strideW": sw, "filterHeight": kh, "filterWidth": kw,
            "fusedActivationFunction": int(rng.choice([0, 1, 3]))}
    return build([(opname, [0], [1], opts)], tensors, [0], [1])


def pad_case(rng):
    shape = tuple(int(rng.integers(1, 6)) for _ in range(4))
    pads = rng.integers(0, 3, size=(4, 2)).astype(np.int32)
    out = tuple(int(s + p[0] + p[1]) for s, p in zip(shape, pads))
    s, zp = _q(rng, 0.005, 0.2), _zp(rng)
    tensors = [T(shape, scale=s, zp=zp), T((4, 2), "int32", data=pads), T(out, scale=s, zp=zp)]
    return build([("PAD", [0, 1], [2], {})], tensors, [0], [2])


def unary_case(rng, opname):
    shape = (1, 16, 16, 1)  # 256 elements: the test input covers every int8 value
    in_s, in_zp = _q(rng, 0.005, 0.3), _zp(rng)
    if opname == "LOGISTIC":
        out_s, out_zp = 1.0 / 256, -128
    else:
        out_s, out_zp = _q(rng, 0.005, 0.3), _zp(rng)
    tensors = [T(shape, scale=in_s, zp=in_zp), T(shape, scale=out_s, zp=out_zp)]
    return build([(opname, [0], [1], {})], tensors, [0], [1])


def prelu_case(rng):
    """PRELU with alpha per channel ([1, 1, C], as binary networks use it) or
    one alpha; alphas of either sign, output scale around the input's."""
    c = int(rng.integers(1, 40))
    shape = (1, int(rng.integers(1, 9)), int(rng.integers(1, 9)), c)
    in_s, a_s = _q(rng, 0.005, 0.2), _q(rng, 0.001, 0.02)
    ac = c if rng.random() < 0.7 else 1
    alpha = rng.integers(-128, 128, (1, 1, ac)).astype(np.int8)
    tensors = [T(shape, scale=in_s, zp=_zp(rng)), T((1, 1, ac), scale=a_s, zp=_zp(rng), data=alpha),
               T(shape, scale=float(np.float32(in_s * _q(rng, 0.3, 3))), zp=_zp(rng))]
    return build([("PRELU", [0, 1], [2], {})], tensors, [0], [2])


def softmax_case(rng):
    outer, depth = int(rng.integers(1, 4)), int(rng.integers(1, 41))
    beta = 1.0 if rng.random() < 0.6 else float(np.float32(rng.uniform(0.3, 3)))
    tensors = [T((outer, depth), scale=_q(rng, 0.01, 0.5), zp=_zp(rng)),
               T((outer, depth), scale=1.0 / 256, zp=-128)]
    return build([("SOFTMAX", [0], [1], {"beta": beta})], tensors, [0], [1])


def concat_case(rng):
    k = int(rng.integers(2, 4))
    base = [1, int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 5))]
    axis = int(rng.choice([1, 2, 3, -1]))
    ax = axis % 4
    parts = [int(rng.integers(1, 4)) for _ in range(k)]
    s, zp = _q(rng, 0.01, 0.1), _zp(rng)
    src_shape = list(base)
    src_shape[ax] = sum(parts)
    # one model input, split into parts by requantizing slices is not an op we
    # have: feed each concat input from its own LUT op on a shared source
    ts = [T(tuple(base[:ax] + [1] + base[ax + 1:]), scale=_q(rng, 0.01, 0.1), zp=_zp(rng))]
    ops, ins = [], []
    for p in parts:
        shp = list(base)
        shp[ax] = p
        # MUL broadcast of the source against nothing isn't possible; use
        # QUANTIZE on a source of that shape: make each input a PAD of the source
        ts.append(T(tuple(shp), scale=s, zp=zp))
        pad = np.zeros((4, 2), np.int32)
        pad[ax, 1] = p - 1
        ts.append(T((4, 2), "int32", data=pad))
        q = T(ts[0].shape, scale=s, zp=zp)
        ts.append(q)
        ops.append(("QUANTIZE", [0], [len(ts) - 1], {}))
        ops.append(("PAD", [len(ts) - 1, len(ts) - 2], [len(ts) - 3], {}))
        ins.append(len(ts) - 3)
    ts.append(T(tuple(src_shape), scale=s, zp=zp))
    ops.append(("CONCATENATION", ins, [len(ts) - 1], {"axis": axis}))
    return build(ops, ts, [0], [len(ts) - 1])


def chain_case(rng):
    """CONV -> HARD_SWISH -> RESHAPE -> FULLY_CONNECTED: aliasing and in-place."""
    h, w, c, oc, od = 5, 4, 3, 6, 4
    in_s = 0.02
    ts = [T((1, h, w, c), scale=in_s, zp=-3),
          T((oc, 3, 3, c), scale=[0.01] * oc, data=_w(rng, (oc, 3, 3, c))),
          T((oc,), "int32", scale=[in_s * 0.01] * oc, data=rng.integers(-3000, 3000, size=oc).astype(np.int32)),
          T((1, h, w, oc), scale=0.15, zp=5),
          T((1, h, w, oc), scale=0.12, zp=-40),
          T((1, h * w * oc), scale=0.12, zp=-40),
          T((2,), "int32", data=np.array([1, h * w * oc], np.int32)),
          T((od, h * w * oc), scale=0.01, data=_w(rng, (od, h * w * oc))),
          T((od,), "int32", scale=0.0012, data=rng.integers(-3000, 3000, size=od).astype(np.int32)),
          T((1, od), scale=0.9, zp=2)]
    ops = [("CONV_2D", [0, 1, 2], [3], {"padding": 0, "strideH": 1, "strideW": 1}),
           ("HARD_SWISH", [3], [4], {}),
           ("RESHAPE", [4, 6], [5], {"newShape": [1, h * w * oc]}),
           ("FULLY_CONNECTED", [5, 7, 8], [9], {})]
    return build(ops, ts, [0], [9])


def _cases():
    gens = {
        "conv": lambda r: conv_case(r),
        "depthwise": lambda r: conv_case(r, depthwise=True),
        "pad_conv": lambda r: conv_case(r, fuse_pad=True),
        "pad_depthwise": lambda r: conv_case(r, depthwise=True, fuse_pad=True),
        "fc": fc_case,
        "add": lambda r: _binary_chain("ADD", _binary_tensors(r, "ADD"), r),
        "mul": lambda r: _binary_chain("MUL", _binary_tensors(r, "MUL"), r),
        "mean": mean_case,
        "avgpool": lambda r: pool_case(r, "AVERAGE_POOL_2D"),
        "maxpool": lambda r: pool_case(r, "MAX_POOL_2D"),
        "pad": pad_case,
        "hardswish": lambda r: unary_case(r, "HARD_SWISH"),
        "logistic": lambda r: unary_case(r, "LOGISTIC"),
        "requantize": lambda r: unary_case(r, "QUANTIZE"),
        "concat": concat_case,
        "softmax": softmax_case,
        "prelu": prelu_case,
        "chain": chain_case,
    }
    out = []
    for name, gen in gens.items():
        for seed in range(SEEDS_PER_OP if name != "chain" else 3):
            out.append((f"{name}-{seed}", gen(np.random.default_rng([zlib.crc32(name.encode()), seed]))))
    return out


def _binary_tensors(rng, opname):
    sa, sb = _bshapes(rng)
    a4 = [1] * (4 - len(sa)) + list(sa)
    b4 = [1] * (4 - len(sb)) + list(sb)
    out = tuple(max(x, y) for x, y in zip(a4, b4))
    a_s, b_s = _q(rng, 0.005, 0.2), _q(rng, 0.005, 0.2)
    if opname == "ADD":
        out_s = float(np.float32(max(a_s, b_s) * _q(rng, 0.5, 3)))
    else:
        out_s = float(np.float32(a_s * b_s * _q(rng, 20, 200)))
    return [T(sa, scale=a_s, zp=_zp(rng)), T(sb, scale=b_s, zp=_zp(rng)), T(out, scale=out_s, zp=_zp(rng))]


CASES = _cases()


def compile_cases(cases, root):
    """Compile every (name, tflite bytes) case under `root` and run the oracle
    on `_inputs` once (in a crash-proof worker): (models, lib(dsp), expected)."""
    models = {}
    for name, data in cases:
        p = root / f"{name}.tflite"
        p.write_bytes(data)
        models[name] = (p, compile_model(p, root / name))
    dirs = [root / name for name, _ in cases]
    jobs = [(data, _inputs(models[name][1].input_bytes, k)) for k, (name, data) in enumerate(cases)]
    expected = dict(zip([c[0] for c in cases], run_isolated(jobs)))
    libs = {}

    def lib(dsp):  # built on first use, once per variant
        if dsp not in libs:
            libs[dsp] = build_host_many(dirs, dsp=dsp)
        return libs[dsp]
    return models, lib, expected


def assert_case_matches(compiled, cases, case, dsp):
    """The generated C of `case` equals the oracle on every input."""
    models, libs, expected = compiled
    path, cm = models[case]
    k = [c[0] for c in cases].index(case)
    lib, symbols = libs(dsp)
    ours = HostModel(lib, cm.input_bytes, cm.output_bytes, symbols[k])
    for i, x in enumerate(_inputs(cm.input_bytes, k)):
        want = expected[case][i]
        got = ours.run(x)
        assert np.array_equal(got, want), (
            f"{case} input #{i}: {int((got != want).sum())}/{want.size} values differ; "
            f"first at {int(np.argmax(got != want))}: got {got[got != want][:5]} want {want[got != want][:5]}")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compile_cases(CASES, tmp_path_factory.mktemp("ops"))


def _inputs(n, seed):
    rng = np.random.default_rng(seed)
    xs = [rng.integers(-128, 128, size=n).astype(np.int8) for _ in range(3)]
    xs.append(np.resize(np.arange(-128, 128, dtype=np.int16).astype(np.int8), n))  # every value
    xs += [np.full(n, -128, np.int8), np.full(n, 127, np.int8)]
    return xs


@pytest.mark.parametrize("dsp", [False, True], ids=["portable", "dsp"])
@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_op_matches_tflite_micro(compiled, case, dsp):
    assert_case_matches(compiled, CASES, case, dsp)
