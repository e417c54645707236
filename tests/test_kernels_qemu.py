"""The Cortex-M7 kernels on the Cortex-M7: one-op models in engine-sized
random shapes (the pointwise, 3x3 depthwise and row-contiguous conv kernels
with their hand-scheduled inner loops, fully connected, element-wise, PRELU)
plus a sample of the host op sweeps (MicroNet's depthwise and grouped
kernels among them), compiled by tinyfake and run in one
firmware on QEMU mps2-an500 (-cpu cortex-m7): every output equals the
tflite-micro wheel's bit for bit. The host tests check the same kernels
with the DSP instructions emulated in C; this checks the real instructions
and the inline assembly."""
from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

pytest.importorskip("tflite_micro")

from test_kernels_micronet_ops import CASES as MICRONET_CASES  # noqa: E402
from test_kernels_ops import CASES, _q, _zp  # noqa: E402

from tinyfake.compiler import compile_model  # noqa: E402
from tinyfake.compiler.modelbuilder import T, build  # noqa: E402
from tinyfake.compiler.oracle import run_isolated  # noqa: E402
from tinyfake.models import binary_device as bd  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bool(bd.tools_missing()),
                                 reason=f"needs {' and '.join(bd.tools_missing())}")]


def conv_model(rng, ih, iw, ic, oc, k, stride, pad, depthwise=False):
    """CONV_2D / DEPTHWISE_CONV_2D (dm 1), per-channel int8 weights, bias,
    a random fused activation; outputs scaled to use most of int8."""
    oh = (ih + stride - 1) // stride if pad == 0 else (ih - k + stride) // stride
    ow = (iw + stride - 1) // stride if pad == 0 else (iw - k + stride) // stride
    in_s = _q(rng, 0.005, 0.1)
    w_s = [_q(rng, 0.002, 0.05) for _ in range(oc)]
    taps = k * k * (1 if depthwise else ic)
    out_s = float(np.float32(125 * math.sqrt(taps) * in_s * float(np.mean(w_s)) * _q(rng, 0.3, 3)))
    wshape = (1, k, k, oc) if depthwise else (oc, k, k, ic)
    tensors = [T((1, ih, iw, ic), scale=in_s, zp=_zp(rng)),
               T(wshape, scale=w_s, zp=0, axis=3 if depthwise else 0,
                 data=rng.integers(-127, 128, wshape).astype(np.int8)),
               T((oc,), "int32", scale=[in_s * s for s in w_s], zp=0,
                 data=rng.integers(-20000, 20000, oc).astype(np.int32)),
               T((1, oh, ow, oc), scale=out_s, zp=_zp(rng))]
    opts = {"padding": pad, "strideH": stride, "strideW": stride, "dilationHFactor": 1,
            "dilationWFactor": 1, "fusedActivationFunction": int(rng.choice([0, 1, 3]))}
    if depthwise:
        opts["depthMultiplier"] = 1
    return build([("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", [0, 1, 2], [3], opts)],
                 tensors, [0], [3])


def _dw3(r):
    c = int(r.integers(1, 40))
    return conv_model(r, int(r.integers(3, 17)), int(r.integers(3, 17)), c, c, 3, int(r.integers(1, 3)),
                      int(r.integers(0, 2)), depthwise=True)


def engine_cases() -> list[tuple[str, bytes]]:
    gens = {
        # 1x1 stride 1, odd channel counts: tfk_pw16 (>= 36 pixels), tfk_conv1x1 (fewer)
        "pw": lambda r: conv_model(r, int(r.integers(6, 15)), int(r.integers(6, 15)), int(r.integers(1, 70)),
                                   int(r.integers(1, 40)), 1, 1, 1),
        "pw_small": lambda r: conv_model(r, int(r.integers(1, 6)), int(r.integers(1, 6)), int(r.integers(1, 70)),
                                         int(r.integers(1, 40)), 1, 1, 1),
        # 3x3 depthwise: tfk_dw3x3 (channels in groups of 4, strides, padding)
        "dw3": _dw3,
        # k x k conv: tfk_conv_rows
        "conv": lambda r: conv_model(r, int(r.integers(3, 13)), int(r.integers(3, 13)), int(r.integers(1, 17)),
                                     int(r.integers(1, 25)), int(r.choice([3, 5])), int(r.integers(1, 3)),
                                     int(r.integers(0, 2))),
    }
    return [(f"engine_{name}-{seed}", gen(np.random.default_rng([zlib.crc32(name.encode()), seed])))
            for name, gen in gens.items() for seed in range(8)]


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    root = tmp_path_factory.mktemp("kq")
    sample = [c for c in CASES if int(c[0].rsplit("-", 1)[1]) < 3 and not c[0].startswith("chain")]
    sample += [c for c in MICRONET_CASES if int(c[0].rsplit("-", 1)[1]) < 6
               and c[0].startswith(("dwk", "gconv", "maximum", "gather"))]
    cases = engine_cases() + sample
    assert len({name for name, _ in cases}) == len(cases)
    rng = np.random.default_rng(0)
    jobs, compiled = [], []
    for name, data in cases:
        path = root / f"{name}.tflite"
        path.write_bytes(data)
        cm = compile_model(path, root / name, name=name.replace("-", "_"))
        x = rng.integers(-128, 128, cm.input_bytes).astype(np.int8)
        jobs.append((data, [x]))
        compiled.append((name, cm, x))
    wants = run_isolated(jobs)
    bcases = [bd.int8_case(name, cm.out_dir, x, want[0]) for (name, cm, x), want in zip(compiled, wants)]
    elf = bd.build(bcases, root / "fw")
    return bcases, compiled, bd.run(elf, timeout=600)


def test_kernels_on_the_cortex_m7_equal_tflite_micro(device):
    cases, compiled, res = device
    assert res.passed, "device mismatches:\n" + "\n".join(res.failures() or [res.output[-3000:]])
    assert [(r.case, r.kernel) for r in res.runs] == bd.expected_runs(cases)


def test_engine_cases_reach_the_hand_written_loops(device):
    _, compiled, _ = device
    kernels = {o.kernel for _, cm, _ in compiled for o in cm.ops}
    assert {"tfk_pw16", "tfk_conv1x1", "tfk_dw3x3", "tfk_conv_rows", "tfk_prelu", "tfk_dwk",
            "tfk_grouped_conv1x1", "tfk_conv2d"} <= kernels
