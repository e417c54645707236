"""`tinyfake compile`: int8 .tflite -> gen/model.c, model.h, sources.txt."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from tinyfake.compiler.api import compile_model, compile_run
from tinyfake.compiler.graph import OPTIMIZE
from tinyfake.compiler.hostbuild import arm_object_sizes
from tinyfake.errors import UserError
from tinyfake.runs import RunDir

HELP = "compile an int8 .tflite model to plain C (static arena, no interpreter)"


def _bytes(text: str) -> int:
    """Byte counts with optional K/M suffix (1024-based): 96K, 1M, 65536."""
    t = text.strip().upper().removesuffix("B")
    mult = 1
    if t.endswith("K"):
        mult, t = 1024, t[:-1]
    elif t.endswith("M"):
        mult, t = 1 << 20, t[:-1]
    try:
        return int(float(t) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a byte count: {text!r} (e.g. 98304 or 96K)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="int8 .tflite file (or a run directory holding model_int8.tflite)")
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="output directory (default: gen/ next to the model)")
    p.add_argument("--name", default=None, help="MODEL_NAME in model.h (default: file or run name)")
    p.add_argument("--arena-budget", type=_bytes, default=None, metavar="BYTES",
                   help="fail if the static arena needs more RAM than this")
    p.add_argument("--flash-budget", type=_bytes, default=None, metavar="BYTES",
                   help="fail if the weights need more flash than this")
    p.add_argument("--no-binary-kernels", action="store_true",
                   help="run a binary net's sign + +-1 conv pairs as int8 convs (to compare)")
    p.add_argument("--optimize", choices=OPTIMIZE, default="speed",
                   help="speed (default): the fastest kernels, some with doubled int16 weights; "
                        "size: int8 weights only (less flash, more instructions; bit-exact either way)")
    p.add_argument("--json", action="store_true", help="print the result (sizes, every operator's kernel) as JSON")


def run(args: argparse.Namespace) -> int:
    path: Path = args.model
    name = args.name
    run = RunDir(path) if path.is_dir() else None
    if run is not None:
        path = run.tflite
    if not path.exists():
        raise UserError(f"{path} does not exist; export a model first with `tinyfake export`")
    out = args.out or path.parent / "gen"
    options = dict(arena_budget=args.arena_budget, flash_budget=args.flash_budget,
                   binary_kernels=not args.no_binary_kernels, optimize=args.optimize)
    if run is not None and args.out is None and name is None:  # the run's own gen/, recorded
        cm = compile_run(run, **options)
    else:
        cm = compile_model(path, out, name=name or (run.root.resolve().name if run else None), **options)
    kernels = sum(1 for o in cm.ops if o.kernel.startswith("tfk"))
    sizes = arm_object_sizes(out) if shutil.which("arm-none-eabi-gcc") else None
    if args.json:
        import dataclasses
        import json

        print(json.dumps({"model": str(path), "out": str(out), "name": cm.name, "hash": cm.hash,
                          "macs": cm.macs, "arena_bytes": cm.arena_bytes, "weight_bytes": cm.weight_bytes,
                          "input_bytes": cm.input_bytes, "output_bytes": cm.output_bytes,
                          "kernel_calls": kernels, "plan": cm.plan_strategy,
                          "cortex_m7_objects": sizes and {"code": sizes["text"], "constants": sizes["rodata"]},
                          "ops": [dataclasses.asdict(o) for o in cm.ops]}, indent=1))
        return 0
    print(f"compiled {path} -> {out}/model.c, model.h, sources.txt")
    print(f"  {len(cm.ops)} operators ({kernels} kernel calls), {cm.macs:,} MACs")
    print(f"  arena {cm.arena_bytes:,} B (input {cm.input_bytes:,} B and output "
          f"{cm.output_bytes} B are the caller's buffers), weights {cm.weight_bytes:,} B")
    if sizes:
        print(f"  Cortex-M7 objects (model.c + runtime, -O2): code {sizes['text']:,} B, "
              f"constants {sizes['rodata']:,} B")
    return 0
