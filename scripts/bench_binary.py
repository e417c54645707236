#!/usr/bin/env python3
"""Binary layers vs int8 layers of the same shape, on the simulated Cortex-M7.

For every binary conv of the binary detector (tinyfake.models.binary.BinaryNet
at --size): one binary layer (its int8 TFLite form, sign + +-1 CONV_2D,
compiled by tinyfake onto tfkb_pack + tfkb_conv) and the int8 CONV_2D of the
same shape (input HxWxC, output channels, kernel, stride; SAME padding),
written as a one-op int8 .tflite and compiled by tinyfake's compiler (the
kernel the int8 network would use), run in one firmware on QEMU mps2-an500
(-cpu cortex-m7, -icount shift=0); the instruction-count plugin
(tinyfake.harness.qemu.build_plugin) counts each kernel call exactly between
marker functions, minus the markers' own cost. Every output is checked on the
device: binary against the numpy reference, int8 against the TFLite Micro
wheel. Also the FFT/LBP channel code on a real face. Writes
bench/results/binary.json. (Whole networks: scripts/bench_zoo.py.)

    .venv/bin/python scripts/bench_binary.py [--size 64] [--out bench/results/binary.json]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinyfake.models import binary_device as bd  # noqa: E402


def binary_layers(size: int, width: int = 16, blocks: int = 4) -> list[dict]:
    """Shapes of the binary convs of BinaryNet(size): input HxWxC, out channels, k, stride."""
    import torch

    from tinyfake.models.binary import BinaryConv2d, BinaryNet

    net = BinaryNet(size, width=width, blocks=blocks).eval()
    layers = []

    def hook(name):
        def fn(mod, inp, out):
            _, c, h, w = inp[0].shape
            layers.append(dict(name=name, h=h, w=w, c=c, oc=mod.out_channels, k=mod.kernel_size[0],
                               stride=mod.stride[0], out_hw=[out.shape[2], out.shape[3]]))
        return fn

    for name, m in net.named_modules():
        if isinstance(m, BinaryConv2d):
            m.register_forward_hook(hook(name))
    with torch.no_grad():
        net(torch.zeros(1, 3, size, size))
    return layers


def int8_conv_tflite(rng, h, w, c, oc, k, stride) -> bytes:
    """One CONV_2D, int8, per-channel weights, SAME padding, no activation."""
    from tinyfake.compiler.modelbuilder import T, build

    oh, ow = -(-h // stride), -(-w // stride)
    in_s, in_zp = 0.05, -128                      # post-ReLU/PReLU-style activation
    w_s = [float(np.float32(v)) for v in rng.uniform(0.004, 0.02, oc)]
    out_s = float(np.float32(125 * math.sqrt(k * k * c) * in_s * float(np.mean(w_s)) / 4))
    tensors = [T((1, h, w, c), scale=in_s, zp=in_zp),
               T((oc, k, k, c), scale=w_s, zp=0, axis=0,
                 data=rng.integers(-127, 128, (oc, k, k, c)).astype(np.int8)),
               T((oc,), "int32", scale=[in_s * s for s in w_s], zp=0,
                 data=rng.integers(-2000, 2000, oc).astype(np.int32)),
               T((1, oh, ow, oc), scale=out_s, zp=0)]
    opts = {"padding": 0, "strideH": stride, "strideW": stride, "dilationHFactor": 1,
            "dilationWFactor": 1, "fusedActivationFunction": 0}
    return build([("CONV_2D", [0, 1, 2], [3], opts)], tensors, [0], [3])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64, help="BinaryNet input size (default 64)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "binary.json")
    args = ap.parse_args(argv)
    if bd.tools_missing():
        print(f"needs {' and '.join(bd.tools_missing())}", file=sys.stderr)
        return 2

    from tinyfake.compiler import compile_model
    from tinyfake.compiler.oracle import run_isolated

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    layers = binary_layers(args.size)
    cases, compiled = [], {}
    with tempfile.TemporaryDirectory(prefix="tinyfake-bench-binary-") as tmp:
        tmp = Path(tmp)
        models, xs = [], []
        for i, L in enumerate(layers):
            key = f"L{i}"
            x = rng.integers(-128, 128, (L["h"], L["w"], L["c"])).astype(np.int8)
            spec = bd.random_layer_spec(rng, L["h"], L["w"], L["c"], L["oc"], L["k"], L["stride"])
            cases += bd.binary_layer_cases(f"{key}_binary", tmp / key, [x], spec)
            tfl = int8_conv_tflite(rng, L["h"], L["w"], L["c"], L["oc"], L["k"], L["stride"])
            path = tmp / f"{key}.tflite"
            path.write_bytes(tfl)
            compiled[key] = compile_model(path, tmp / f"gen_{key}", name=key)
            models.append((tfl, [x.reshape(1, L["h"], L["w"], L["c"])]))
            xs.append(x)
        wants = run_isolated(models)
        for i in range(len(layers)):
            key = f"L{i}"
            cases.insert(2 * i + 1, bd.int8_case(f"{key}_int8", compiled[key].out_dir, xs[i], wants[i][0]))
        face = bd.real_faces(args.size, 1)[0]
        cases.append(bd.channels_case(f"face_ch{args.size}", face))
        elf = bd.build(cases, tmp / "fw")
        res = bd.run(elf, count_instructions=True, timeout=600)
    if not res.passed:
        print("device outputs differ from the host references:\n" + "\n".join(res.failures()),
              file=sys.stderr)
        print(res.output[-2000:], file=sys.stderr)
    count = {(r.case, r.kernel): r.instructions for r in res.runs}

    rows, tot = [], dict(binary=0, int8=0, macs=0, wbin=0, wint8=0)
    for i, L in enumerate(layers):
        key = f"L{i}"
        cm = compiled[key]
        oh, ow = L["out_hw"]
        macs = oh * ow * L["oc"] * L["k"] * L["k"] * L["c"]
        b = count[(f"{key}_binary", "int8")]
        i8 = count[(f"{key}_int8", "int8")]
        wbin = cases[2 * i].ints["weight_bytes"]
        row = dict(layer=L["name"], input_hwc=[L["h"], L["w"], L["c"]], output_hwc=[oh, ow, L["oc"]],
                   kernel=L["k"], stride=L["stride"], macs=macs,
                   binary=dict(instructions=b, kernels="tfkb_pack + tfkb_conv", weight_bytes=wbin),
                   int8=dict(instructions=i8, kernel=cm.ops[0].kernel, weight_bytes=cm.weight_bytes),
                   int8_over_binary=round(i8 / b, 3), binary_fewer_instructions=b < i8)
        rows.append(row)
        tot["binary"] += b
        tot["int8"] += i8
        tot["macs"] += macs
        tot["wbin"] += wbin
        tot["wint8"] += cm.weight_bytes
    ch = count.get((f"face_ch{args.size}", "channels"))
    out = {
        "description": ("binary conv layers (int8 form compiled by tinyfake onto tfkb_pack + tfkb_conv) "
                        "vs the int8 CONV_2D of the same shape compiled by tinyfake (one-op .tflite, "
                        "SAME padding), instructions per "
                        "layer on QEMU mps2-an500 -cpu cortex-m7 (-icount shift=0, TCG plugin between "
                        "tf_mark_begin/tf_mark_end, marker overhead subtracted); every output checked on "
                        "the device (binary: numpy reference, int8: tflite-micro wheel)"),
        "model": f"BinaryNet({args.size}), width 16, 4 blocks: its binary convs",
        "flags": " ".join(bd.CFLAGS),
        "bit_exact": res.passed,
        "marker_overhead_instructions": res.overhead,
        "layers": rows,
        "total": dict(macs=tot["macs"], binary_instructions=tot["binary"],
                      int8_instructions=tot["int8"],
                      int8_over_binary=round(tot["int8"] / tot["binary"], 3),
                      binary_weight_bytes=tot["wbin"], int8_weight_bytes=tot["wint8"],
                      weight_reduction=round(tot["wint8"] / tot["wbin"], 2)),
        "channels": dict(input=f"{args.size}x{args.size} RGB face (skimage astronaut)",
                         instructions=ch, bit_exact=res.passed),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{'layer':24} {'in':>12} {'out':>12} k s {'MACs':>9} {'binary':>9} "
          f"{'int8':>9} {'int8/bin':>8}  int8 kernel")
    for r in rows:
        print(f"{r['layer']:24} {'x'.join(map(str, r['input_hwc'])):>12} "
              f"{'x'.join(map(str, r['output_hwc'])):>12} {r['kernel']} {r['stride']} {r['macs']:>9} "
              f"{r['binary']['instructions']:>9} {r['int8']['instructions']:>9} "
              f"{r['int8_over_binary']:>8}  {r['int8']['kernel']}")
    t = out["total"]
    print(f"total: binary {t['binary_instructions']} vs int8 {t['int8_instructions']} instructions "
          f"(int8/binary {t['int8_over_binary']}); weights {t['binary_weight_bytes']} vs "
          f"{t['int8_weight_bytes']} B; channels {ch}; bit exact {res.passed}")
    print(f"wrote {args.out}")
    return 0 if res.passed else 1


if __name__ == "__main__":
    sys.exit(main())
