#!/usr/bin/env python3
"""Benchmark tinyfake's engine against TensorFlow Lite Micro + CMSIS-NN.

For each model (the four reference models in ../shared/bench/models, skipped
cleanly when absent, and the project's own runs/*/model_int8.tflite):

1. compile it (tinyfake.compiler) and build the firmware for the simulator
   (tinyfake.firmware.build_firmware, board mps2-an500);
2. run it in QEMU mps2-an500 with the instruction-count plugin: one warm-up
   and one counted inference on the LCG input (seed 1, ../shared/bench/README.md);
3. check the device output equals the `tflite-micro` wheel's output;
4. build it a second time with a per-operator marker (tf_mark_op at every
   MODEL_OP_BEGIN) for per-operator instruction counts;
5. read flash (.text + .rodata + .data of the whole firmware ELF, model
   included), static RAM and the arena from the ELF / the compiler.

Writes bench/results/engine.json ("models": the reference models; "runs":
the project's own runs/*, kept apart from the regression baseline). `--table` prints the README's performance
table (markdown) from that file.

    .venv/bin/python scripts/bench_engine.py [--out bench/results/engine.json] [--models a,b] [MODEL.tflite ...]
    .venv/bin/python scripts/bench_engine.py --table [--out bench/results/engine.json]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BENCH = REPO.parent / "shared" / "bench"
MODELS_DIR = BENCH / "models"
DEFAULT_OUT = REPO / "bench" / "results" / "engine.json"
BOARD = "mps2-an500"

# TFLite Micro (90b983c) + CMSIS-NN (4ab83cc, v7.0.0-33) on Cortex-M7 in QEMU
# mps2-an500, one Invoke() after a warm-up, LCG input seed 1: the table
# "Reference measurements" of ../shared/bench/README.md (CMSIS-NN rows,
# int8-only kernel registration).
TFLM_CMSIS_NN = {
    "phinet96": {"instructions": 50_708_324, "arena_bytes": 156_596, "flash_bytes": 177_364, "model_bytes": 93_792},
    "phinet64": {"instructions": 22_728_279, "arena_bytes": 83_124, "flash_bytes": 177_060, "model_bytes": 93_488},
    "phinet96compat": {"instructions": 17_686_588, "arena_bytes": 147_252, "flash_bytes": 130_876,
                       "model_bytes": 59_088},
    "xinet96": {"instructions": 38_999_255, "arena_bytes": 73_332, "flash_bytes": 147_420, "model_bytes": 69_056},
}
# Same README, TFLM reference kernels (no CMSIS-NN), for context.
TFLM_REFERENCE_INSTRUCTIONS = {"phinet96": 104_924_291, "phinet64": 46_786_115,
                               "phinet96compat": 71_866_634, "xinet96": 81_263_541}
# Issue 7: what tinyfake must reach on each reference model (ratio to TFLM + CMSIS-NN).
TARGETS = {"instructions": 0.33, "arena_bytes": 0.5, "flash_bytes": 0.8}


def find_models(explicit: list[str] | None = None, only: set[str] | None = None) -> list[tuple[str, Path]]:
    """(name, path): the reference models, then runs/*/model_int8.tflite."""
    if explicit:
        return [(Path(p).stem, Path(p)) for p in explicit]
    found = []
    if MODELS_DIR.is_dir():
        found += [(p.stem, p) for p in sorted(MODELS_DIR.glob("*.tflite"))]
    for p in sorted((REPO / "runs").glob("*/model_int8.tflite")):
        found.append((f"run:{p.parent.name}", p))
    if only:
        found = [(n, p) for n, p in found if n in only]
    return found


def _parse_plugin_log(path: Path) -> list[tuple[int, list[int]]]:
    """Plugin output -> [(instructions, [op marker hits])] per begin/end pair."""
    pairs, ops = [], []
    for ln in path.read_text().splitlines():
        parts = ln.split()
        if not parts:
            continue
        if parts[0] == "op":
            ops.append(int(parts[2]))
        else:
            pairs.append((int(parts[1]), ops))
            ops = []
    return pairs


def _simulate(build, x: np.ndarray) -> dict:
    """Warm-up + counted inference in QEMU; outputs, counts, op marker hits."""
    from tinyfake.harness.protocol import Device
    from tinyfake.harness.qemu import QemuSim

    with QemuSim(build.sim_elf, build.board) as sim:
        with Device(sim.url, instructions=sim.instructions, expected_hash=build.model.hash) as dev:
            dev.hello()
            warm = dev.infer(x)
            counted = dev.infer(x)
            stack = dev.stat()
            dev.exit(0)
        sim.wait()
        pairs = _parse_plugin_log(sim.instructions.path)
    if len(pairs) != 2:
        raise RuntimeError(f"expected 2 counted inferences in the plugin log, got {len(pairs)}")
    return {"warmup": warm, "counted": counted, "pairs": pairs, "stack_used": stack.get("stack_used", 0)}


def _memory(build) -> dict:
    from tinyfake.report.memory import flash_bytes
    usage = build.sim_image.usage
    ram = {k: u for k, u in usage.items() if u.kind == "ram"}
    parts: dict[str, int] = {}
    for u in ram.values():
        for k, v in u.parts.items():
            parts[k] = parts.get(k, 0) + v
    flash_parts: dict[str, int] = {}
    for u in usage.values():
        if u.kind == "rom":
            for k, v in u.parts.items():
                flash_parts[k] = flash_parts.get(k, 0) + v
    return {"flash_bytes": flash_bytes(usage), "flash_parts": flash_parts,
            "static_ram_bytes": parts.get("data", 0) + parts.get("bss", 0) + parts.get("arena", 0),
            "ram_parts": parts}


def bench_model(name: str, path: Path, work: Path, log=print) -> dict:
    from tinyfake.compiler import compile_model
    from tinyfake.compiler.oracle import lcg_input, run_isolated
    from tinyfake.firmware import build_firmware, load_board
    from tinyfake.harness.profile import profile_ops

    t0 = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    cm = compile_model(path, work / "gen", name=name)
    build = build_firmware(work / "gen", BOARD, work / "fw", tflite=path)
    x = lcg_input(cm.input_bytes).reshape(cm.input_shape)
    want = run_isolated([(path.read_bytes(), [x])])[0][0].reshape(-1)
    run = _simulate(build, x)
    insns = run["pairs"][1][0]
    if run["counted"].instructions != insns:
        raise RuntimeError("harness and plugin log disagree on the instruction count")

    # per-operator counts from a second build with a marker at each operator
    profile = profile_ops(work / "gen", path, load_board(BOARD), work / "fw_ops", x, insns)
    per_op = [{k: r[k] for k in ("index", "op", "kernel", "macs", "instructions")} for r in profile["ops"]]
    by_type = {t: {"count": v["count"], "instructions": v["instructions"], "share": v["share"]}
               for t, v in profile["by_type"].items()}

    out_dev = run["counted"].output.reshape(-1)
    mem = _memory(build)
    res = {
        "model": str(path.relative_to(REPO.parent) if path.is_relative_to(REPO.parent) else path),
        "model_hash": cm.hash,
        "board": BOARD,
        "input": "LCG seed 1 (x = x*1664525 + 1013904223 mod 2^32; v = int8(x >> 24))",
        "instructions": insns,
        "warmup_instructions": run["pairs"][0][0],
        "deterministic": run["pairs"][0][0] == insns,
        "macs": cm.macs,
        "arena_bytes": cm.arena_bytes,
        "weight_bytes": cm.weight_bytes,
        **mem,
        "stack_used_bytes": run["stack_used"],
        "plan": cm.plan_strategy,
        "bit_exact": bool(np.array_equal(out_dev, want)) and bool(
            np.array_equal(run["warmup"].output.reshape(-1), want)),
        "output_device": out_dev.tolist(),
        "output_tflite_micro": want.tolist(),
        "instructions_by_op_type": by_type,
        "instructions_other": insns - sum(p["instructions"] for p in per_op),
        "per_op": per_op,
    }
    ref = TFLM_CMSIS_NN.get(name)
    if ref:
        res["tflm_cmsis_nn"] = ref
        res["ratio"] = {k: round(res[k] / ref[k], 4) for k in TARGETS}
        res["targets_met"] = all(res["ratio"][k] <= v for k, v in TARGETS.items())
        res["speedup_vs_tflm_reference_kernels"] = round(TFLM_REFERENCE_INSTRUCTIONS[name] / insns, 2)
    res["bench_seconds"] = round(time.perf_counter() - t0, 1)
    log(f"{name}: {insns:,} instructions, arena {cm.arena_bytes:,} B, flash {mem['flash_bytes']:,} B, "
        f"bit-exact {res['bit_exact']}"
        + (f", ratios {res['ratio']}" if ref else "") + f" ({res['bench_seconds']} s)")
    return res


def run_bench(models: list[tuple[str, Path]], out: Path | None = DEFAULT_OUT, work: Path | None = None,
              log=print) -> dict:
    tmp = None
    if work is None:
        tmp = tempfile.mkdtemp(prefix="tinyfake-bench-")
        work = Path(tmp)
    try:
        results = {name: bench_model(name, path, work / name.replace(":", "_"), log) for name, path in models}
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    doc = {
        "description": "tinyfake engine vs TFLite Micro + CMSIS-NN, QEMU mps2-an500 (Cortex-M7), "
                       "instructions of one inference after a warm-up (TCG plugin), LCG input seed 1",
        "reference": "../shared/bench/README.md (TFLite Micro 90b983c + CMSIS-NN 4ab83cc)",
        "targets": TARGETS,
        # the reference models; the project's own runs (runs/*, "run:" names) go
        # under "runs" so the committed regression baseline holds only the former
        "models": {n: r for n, r in results.items() if not n.startswith("run:")},
    }
    runs = {n: r for n, r in results.items() if n.startswith("run:")}
    if runs:
        doc["runs"] = runs
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def table_markdown(doc: dict) -> str:
    """The README performance table from engine.json's contents."""
    rows = ["| model | instructions / inference | vs TFLM+CMSIS-NN | arena (B) | vs TFLM | "
            "flash (B), model incl. | vs TFLM | static RAM (B) | bit-exact |",
            "|---|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    every = {**doc["models"], **doc.get("runs", {})}
    for name, r in every.items():
        ratio = r.get("ratio", {})

        def rt(k):
            return f"{ratio[k]:.2f}x" if k in ratio else "-"
        rows.append(f"| {name} | {r['instructions']:,} | {rt('instructions')} | {r['arena_bytes']:,} | "
                    f"{rt('arena_bytes')} | {r['flash_bytes']:,} | {rt('flash_bytes')} | "
                    f"{r['static_ram_bytes']:,} | {'yes' if r['bit_exact'] else 'NO'} |")
    lines = ["\n".join(rows), "",
             "Where the instructions go (share of one inference, by operator type):", ""]
    for name, r in every.items():
        parts = [f"{k} x{v['count']} {100 * v['share']:.1f}%" for k, v in r["instructions_by_op_type"].items()
                 if v["instructions"]]
        lines.append(f"- {name}: " + ", ".join(parts))
    return "\n".join(lines) + "\n"


README = Path(__file__).resolve().parents[1] / "README.md"
TABLE_BEGIN = "<!-- engine-table: generated by scripts/bench_engine.py --readme -->"
TABLE_END = "<!-- /engine-table -->"


def readme_with_table(readme: str, table: str, begin: str = TABLE_BEGIN, end: str = TABLE_END) -> str:
    """README text with the block between the markers (default: engine-table) replaced."""
    head, sep, rest = readme.partition(begin)
    _, sep2, tail = rest.partition(end)
    if not (sep and sep2):
        raise SystemExit(f"README.md lacks the markers {begin} ... {end}")
    return f"{head}{begin}\n{table}{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help=".tflite files (default: the reference models and runs/*)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--models", dest="only", help="comma-separated subset of model names")
    ap.add_argument("--work", type=Path, help="keep the generated C and firmware here")
    ap.add_argument("--table", action="store_true", help="print the markdown table of --out and exit")
    ap.add_argument("--readme", action="store_true", help="write the table of --out into README.md and exit")
    args = ap.parse_args(argv)
    if args.table or args.readme:
        table = table_markdown(json.loads(args.out.read_text()))
        if args.readme:
            README.write_text(readme_with_table(README.read_text(), table))
        else:
            print(table, end="")
        return 0
    models = find_models(args.models, set(args.only.split(",")) if args.only else None)
    if not models:
        print(f"no models: {MODELS_DIR} is absent and there is no runs/*/model_int8.tflite; nothing to do")
        return 0
    doc = run_bench(models, args.out, args.work)
    print(table_markdown(doc), end="")
    bad = [n for n, r in {**doc["models"], **doc.get("runs", {})}.items() if not r["bit_exact"] or not r["deterministic"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
