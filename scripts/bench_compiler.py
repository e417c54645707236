#!/usr/bin/env python3
"""Benchmark the inference compiler against TFLite Micro.

For each model (the four reference models in ../shared/bench/models and any
runs/*/model_int8.tflite): tinyfake's static arena vs the arena the
tflite-micro wheel needs for the same model, weight bytes, code bytes
(.text of model.c + runtime built with arm-none-eabi-gcc for Cortex-M7),
MACs, and a bit-exactness check (LCG input, portable and DSP kernels).
Writes bench/results/compiler.json.

    .venv/bin/python scripts/bench_compiler.py [--out bench/results/compiler.json] [MODEL.tflite ...]
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinyfake.compiler import compile_model  # noqa: E402
from tinyfake.compiler.hostbuild import HostModel, arm_object_sizes, build_host  # noqa: E402
from tinyfake.compiler.oracle import Oracle, lcg_input  # noqa: E402

BENCH = REPO.parent / "shared" / "bench"
TARGET = 0.60


def tflm_cortex_m7_arenas() -> dict[str, int]:
    """Arena bytes TFLite Micro + CMSIS-NN used on Cortex-M7 (bench README table)."""
    readme = BENCH / "README.md"
    if not readme.exists():
        return {}
    out = {}
    for m in re.finditer(r"^\| (\w+) \| CMSIS-NN \| [\d,]+ \| ([\d,]+) \|", readme.read_text(), re.M):
        out[m.group(1)] = int(m.group(2).replace(",", ""))
    return out


def bench_one(path: Path, name: str, m7_arenas: dict[str, int]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(tmp) / "gen"
        t0 = time.perf_counter()
        cm = compile_model(path, gen, name=name)
        compile_s = time.perf_counter() - t0
        oracle = Oracle(path)
        x = lcg_input(cm.input_bytes)
        want = oracle.run(x)
        exact = {}
        for variant, dsp in (("portable", False), ("dsp_emulated", True)):
            got = HostModel(build_host(gen, dsp=dsp), cm.input_bytes, cm.output_bytes).run(x)
            exact[variant] = bool(np.array_equal(got, want))
        tflm_arena = oracle.arena_used()
        try:
            sizes = arm_object_sizes(gen)
        except Exception as exc:  # no toolchain: report, don't fail the benchmark
            sizes = {"error": str(exc).splitlines()[0]}
        r = {
            "model": name,
            "path": str(path),
            "sha256_16": cm.hash,
            "macs": cm.macs,
            "ops": len(cm.ops),
            "kernel_calls": sum(1 for o in cm.ops if o.kernel.startswith("tfk_")),
            "arena_bytes": cm.arena_bytes,
            "io_bytes": cm.input_bytes + cm.output_bytes,
            "tflm_arena_bytes_wheel": tflm_arena,
            "arena_ratio_vs_wheel": round(cm.arena_bytes / tflm_arena, 4),
            "arena_plus_io_ratio_vs_wheel": round((cm.arena_bytes + cm.input_bytes + cm.output_bytes)
                                                  / tflm_arena, 4),
            "weight_bytes": cm.weight_bytes,
            "model_file_bytes": path.stat().st_size,
            "code_bytes_text": sizes.get("text"),
            "rodata_bytes": sizes.get("rodata"),
            "plan_strategy": cm.plan_strategy,
            "bit_exact_lcg": exact,
            "tflm_output_lcg": [int(v) for v in want],
            "compile_seconds": round(compile_s, 3),
        }
        if name in m7_arenas:
            r["tflm_arena_bytes_cortex_m7"] = m7_arenas[name]
            r["arena_ratio_vs_cortex_m7"] = round(cm.arena_bytes / m7_arenas[name], 4)
        r["meets_arena_target"] = r["arena_ratio_vs_wheel"] <= TARGET
        return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path, help="extra .tflite files")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "compiler.json")
    args = ap.parse_args(argv)
    models = [(p, p.stem) for p in sorted((BENCH / "models").glob("*.tflite"))]
    models += [(p, p.parent.name) for p in sorted((REPO / "runs").glob("*/model_int8.tflite"))]
    models += [(p, p.stem) for p in args.models]
    m7 = tflm_cortex_m7_arenas()
    results = []
    for path, name in models:
        r = bench_one(path, name, m7)
        results.append(r)
        print(f"{name:16s} arena {r['arena_bytes']:7d} B vs TFLM {r['tflm_arena_bytes_wheel']:7d} B "
              f"({100 * r['arena_ratio_vs_wheel']:.0f}%), weights {r['weight_bytes']:6d} B, "
              f"code {r['code_bytes_text']} B, MACs {r['macs']:,}, exact {r['bit_exact_lcg']}")
    out = {
        "description": "tinyfake compiler vs TFLite Micro: static arena (model input/output are the "
                       "caller's buffers, listed as io_bytes), weights, Cortex-M7 code size, MACs",
        "arena_target_ratio": TARGET,
        "models": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    ok = all(r["meets_arena_target"] and all(r["bit_exact_lcg"].values()) for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
