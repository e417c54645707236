"""The fast kernels (issue 7) against the TFLite Micro wheel, bit for bit:
pointwise conv (tfk_conv1x1, and tfk_pw16 with int16 weights), 3x3 depthwise (tfk_dw3x3), row-contiguous
conv (tfk_conv_rows), the exact SMMLAR requantization (tfk_rq) behind all
of them, the ADD / MUL fast paths (every ADD case has one input at the larger
scale, i.e. the exact multiplier-1/2 path), and the planner's output-over-input
overlap. Each case runs in both kernel variants: portable C and the
Cortex-M7 DSP code with emulated intrinsics."""
from __future__ import annotations

import math
import random
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tflite_micro")

from test_kernels_ops import _binary_chain, _binary_tensors, _out_size, _q, _w, _zp  # noqa: E402

from tinyfake.compiler import compile_model  # noqa: E402
from tinyfake.compiler import quant as Q  # noqa: E402
from tinyfake.compiler.hostbuild import HostModel, build_host, build_host_many  # noqa: E402
from tinyfake.compiler.modelbuilder import T, build  # noqa: E402
from tinyfake.compiler.oracle import Oracle, lcg_input, run_isolated  # noqa: E402

BENCH_MODELS = Path(__file__).resolve().parents[2] / "shared" / "bench" / "models"


def conv(rng, *, depthwise, k, stride, ic, oc=None, hw=None, pad=None, fuse_pad=False, act=None, bias=True):
    ih, iw = hw or (int(rng.integers(1, 14)), int(rng.integers(1, 14)))
    kh, kw = k
    sh, sw = stride
    pad = int(rng.integers(0, 2)) if pad is None else pad
    pads = [int(v) for v in rng.integers(0, 2, size=4)] if fuse_pad else [0, 0, 0, 0]
    ph, pw = ih + pads[0] + pads[1], iw + pads[2] + pads[3]
    oh, ow = _out_size(pad, ph, kh, sh, 1), _out_size(pad, pw, kw, sw, 1)
    if oh < 1 or ow < 1:
        pad, oh, ow = 0, (ph + sh - 1) // sh, (pw + sw - 1) // sw  # SAME always fits
        oh, ow = _out_size(0, ph, kh, sh, 1), _out_size(0, pw, kw, sw, 1)
    oc = ic if depthwise else oc
    in_s, in_zp = _q(rng, 0.005, 0.1), _zp(rng)
    w_s = [_q(rng, 0.002, 0.05) for _ in range(oc)]
    kk = kh * kw * (1 if depthwise else ic)
    out_s = float(np.float32(125 * math.sqrt(kk) * in_s * float(np.mean(w_s)) * _q(rng, 0.3, 3)))
    wshape = (1, kh, kw, oc) if depthwise else (oc, kh, kw, ic)
    tensors = [T((1, ih, iw, ic), scale=in_s, zp=in_zp),
               T(wshape, scale=w_s, zp=0, axis=3 if depthwise else 0, data=_w(rng, wshape)),
               T((oc,), "int32", scale=[in_s * s for s in w_s], zp=0,
                 data=rng.integers(-20000, 20000, size=oc).astype(np.int32)),
               T((1, oh, ow, oc), scale=out_s, zp=_zp(rng))]
    opts = {"padding": pad, "strideH": sh, "strideW": sw,
            "fusedActivationFunction": int(rng.choice([0, 0, 1, 3])) if act is None else act}
    name = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
    if depthwise:
        opts["depthMultiplier"] = 1
    ins = [0, 1, 2] if bias or depthwise else [0, 1, -1]
    if not fuse_pad:
        return build([(name, ins, [3], opts)], tensors, [0], [3])
    tensors.append(T((1, ph, pw, ic), scale=in_s, zp=in_zp))
    tensors.append(T((4, 2), "int32", data=np.array([[0, 0], pads[:2], pads[2:], [0, 0]], np.int32)))
    return build([("PAD", [0, 5], [4], {}), (name, [4] + ins[1:], [3], opts)], tensors, [0], [3])


def expand_then_dw(rng):
    """pointwise expansion -> strided 3x3 depthwise -> pointwise projection:
    the planner overlaps each output with its dying input."""
    # 10x10 expansion (tfk_pw16), 5x5 projection (tfk_conv1x1: < 36 pixels)
    h, c0, c1, c2 = 10, int(rng.integers(2, 7)), int(rng.integers(8, 30)), int(rng.integers(2, 9))
    s = [_q(rng, 0.01, 0.1) for _ in range(4)]
    zp = [_zp(rng) for _ in range(4)]
    ts = [T((1, h, h, c0), scale=s[0], zp=zp[0]),
          T((c1, 1, 1, c0), scale=[0.02] * c1, axis=0, data=_w(rng, (c1, 1, 1, c0))),
          T((c1,), "int32", scale=[s[0] * 0.02] * c1, data=rng.integers(-3000, 3000, c1).astype(np.int32)),
          T((1, h, h, c1), scale=s[1] * 8, zp=zp[1]),
          T((1, 3, 3, c1), scale=[0.02] * c1, axis=3, data=_w(rng, (1, 3, 3, c1))),
          T((c1,), "int32", scale=[s[1] * 8 * 0.02] * c1, data=rng.integers(-3000, 3000, c1).astype(np.int32)),
          T((1, h // 2, h // 2, c1), scale=s[2] * 4, zp=zp[2]),
          T((c2, 1, 1, c1), scale=[0.02] * c2, axis=0, data=_w(rng, (c2, 1, 1, c1))),
          T((c2,), "int32", scale=[s[2] * 4 * 0.02] * c2, data=rng.integers(-3000, 3000, c2).astype(np.int32)),
          T((1, h // 2, h // 2, c2), scale=s[3] * 8, zp=zp[3])]
    ops = [("CONV_2D", [0, 1, 2], [3], {"padding": 0, "strideH": 1, "strideW": 1}),
           ("DEPTHWISE_CONV_2D", [3, 4, 5], [6], {"padding": 0, "strideH": 2, "strideW": 2, "depthMultiplier": 1}),
           ("CONV_2D", [6, 7, 8], [9], {"padding": 0, "strideH": 1, "strideW": 1})]
    return build(ops, ts, [0], [9])


def _cases():
    gens = {
        # < 36 pixels (graph.PW16_MIN_PIXELS): int8 weights (tfk_conv1x1)
        "pw": lambda r: conv(r, depthwise=False, k=(1, 1), stride=(1, 1), ic=int(r.integers(1, 14)),
                             oc=int(r.integers(1, 10)), hw=(int(r.integers(1, 6)), int(r.integers(1, 6))),
                             pad=int(r.integers(0, 2)), bias=r.random() < 0.8),
        # >= 36 pixels: int16 weights (tfk_pw16), small (unrolled) and generic group counts,
        # odd output channel counts and odd pixel counts
        "pw16": lambda r: conv(r, depthwise=False, k=(1, 1), stride=(1, 1),
                               ic=int(r.choice([int(r.integers(1, 13)), int(r.integers(13, 70))])),
                               oc=int(r.integers(1, 14)), hw=(int(r.integers(10, 17)), int(r.integers(10, 17))),
                               pad=int(r.integers(0, 2)), bias=r.random() < 0.8),
        "dw3s1": lambda r: conv(r, depthwise=True, k=(3, 3), stride=(1, 1), ic=int(r.integers(1, 14))),
        "dw3s2": lambda r: conv(r, depthwise=True, k=(3, 3), stride=(2, 2), ic=int(r.integers(1, 14)),
                                fuse_pad=r.random() < 0.5),
        "dw3any": lambda r: conv(r, depthwise=True, k=(3, 3), stride=(int(r.integers(1, 4)), int(r.integers(1, 4))),
                                 ic=int(r.integers(1, 10)), fuse_pad=r.random() < 0.5),
        "rows3": lambda r: conv(r, depthwise=False, k=(3, 3), stride=(1, 1), ic=int(r.integers(1, 7)),
                                oc=int(r.integers(1, 10)), bias=r.random() < 0.8),
        "rows_any": lambda r: conv(r, depthwise=False, k=(int(r.integers(1, 8)), int(r.integers(1, 8))),
                                   stride=(int(r.integers(1, 4)), int(r.integers(1, 4))), ic=int(r.integers(1, 6)),
                                   oc=int(r.integers(1, 7)), fuse_pad=r.random() < 0.4),
        "add": lambda r: _binary_chain("ADD", _binary_tensors(r, "ADD"), r),
        "mul": lambda r: _binary_chain("MUL", _binary_tensors(r, "MUL"), r),
        "overlap": expand_then_dw,
    }
    out = []
    for name, gen in gens.items():
        for seed in range(10):
            out.append((f"{name}-{seed}", gen(np.random.default_rng([zlib.crc32(b"fast" + name.encode()), seed]))))
    return out


CASES = _cases()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    root = tmp_path_factory.mktemp("fast")
    models = {}
    for name, data in CASES:
        p = root / f"{name}.tflite"
        p.write_bytes(data)
        models[name] = compile_model(p, root / name)
    rng = np.random.default_rng(7)
    inputs = {name: [rng.integers(-128, 128, size=m.input_bytes).astype(np.int8) for _ in range(2)]
              + [np.full(m.input_bytes, -128, np.int8), np.full(m.input_bytes, 127, np.int8)]
              for name, m in models.items()}
    expected = dict(zip([c[0] for c in CASES], run_isolated([(d, inputs[n]) for n, d in CASES])))
    libs = {}

    def lib(dsp):
        if dsp not in libs:
            libs[dsp] = build_host_many([root / n for n, _ in CASES], dsp=dsp)
        return libs[dsp]
    return models, inputs, expected, lib


def test_fast_kernels_are_used(compiled):
    models = compiled[0]
    kernels = {name.split("-")[0]: set() for name, _ in CASES}
    for name, m in models.items():
        kernels[name.split("-")[0]] |= {o.kernel for o in m.ops}
    assert "tfk_conv1x1" in kernels["pw"] and "tfk_conv1x1" in kernels["overlap"]
    assert "tfk_pw16" in kernels["pw16"] and "tfk_pw16" in kernels["overlap"]
    assert all("tfk_dw3x3" in kernels[k] for k in ("dw3s1", "dw3s2", "dw3any", "overlap"))
    assert "tfk_conv_rows" in kernels["rows3"] and "tfk_conv_rows" in kernels["rows_any"]


@pytest.mark.parametrize("dsp", [False, True], ids=["portable", "dsp"])
@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_fast_kernel_matches_tflite_micro(compiled, case, dsp):
    models, inputs, expected, libs = compiled
    lib, symbols = libs(dsp)
    k = [c[0] for c in CASES].index(case)
    m = models[case]
    hm = HostModel(lib, m.input_bytes, m.output_bytes, symbol=symbols[k])
    for x, want in zip(inputs[case], expected[case]):
        assert np.array_equal(hm.run(x), np.asarray(want).reshape(-1)), case


def test_overlap_shrinks_the_arena(compiled):
    for name, m in compiled[0].items():
        if name.startswith("overlap"):
            tensors = [12 * 12 * 32, 6 * 6 * 32]   # upper bound of expansion + depthwise outputs
            assert m.arena_bytes < sum(tensors)


def test_rq_equals_reference_requantization():
    """tfk_rq's SMMLAR identity (checked here in Python, the same integer
    steps as the C) equals MultiplyByQuantizedMultiplier + zero point."""
    rnd = random.Random(3)
    for _ in range(20000):
        m, e, zp = rnd.randint(1 << 30, (1 << 31) - 1), rnd.randint(1, 22), rnd.randint(-128, 127)
        x = rnd.choice([rnd.randint(-(1 << 30) + 1, (1 << 30) - 1), rnd.randint(-70000, 70000), rnd.randint(-3, 3)])
        mm, k, ee = Q.fast_requant([m], [-e], zp, abs(x))[0]
        c = k + (x >> 31)
        got = ((c << 32) + 2 * x * mm + (1 << 31)) >> 32 >> ee
        assert got == Q.mbqm(x, m, -e) + zp
    assert Q.fast_requant([1 << 30], [0], 0, 10) is None          # no right shift: reference path
    assert Q.fast_requant([1 << 30], [-3], 0, 1 << 30) is None    # accumulator too large


@pytest.mark.skipif(not BENCH_MODELS.is_dir(), reason="../shared/bench/models not present")
@pytest.mark.parametrize("name", ["phinet96", "phinet64", "phinet96compat", "xinet96"])
def test_bench_model_host_bit_exact(name, tmp_path):
    path = BENCH_MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not present")
    m = compile_model(path, tmp_path / "gen", name=name)
    oracle = Oracle(path)
    xs = [lcg_input(m.input_bytes), np.random.default_rng(1).integers(-128, 128, m.input_bytes).astype(np.int8)]
    for dsp in (False, True):
        hm = HostModel(build_host(tmp_path / "gen", dsp=dsp), m.input_bytes, m.output_bytes)
        for x in xs:
            assert np.array_equal(hm.run(x), oracle.run(x)), (name, dsp)
