#!/usr/bin/env python3
"""Flash against instructions: each reference model compiled `--optimize
speed` (the default) and `--optimize size` (int8 weights only).

For each model of ../shared/bench/models and each way: the compiler's
weight bytes, the arena, the whole firmware's flash and the instructions of
one inference of the self-test input, on QEMU's mps2-an500 as in
bench_engine (flash against TFLite Micro + CMSIS-NN's on the same machine),
the output checked against TFLite Micro's by the firmware's self-test.
Writes bench/results/optimize.json.

    .venv/bin/python scripts/bench_optimize.py [--models phinet96compat ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MODELS = REPO.parent / "shared" / "bench" / "models"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="*", default=["phinet96", "phinet64", "phinet96compat", "xinet96"])
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "optimize.json")
    args = ap.parse_args()
    from tinyfake.compiler import compile_model
    from tinyfake.firmware import build_firmware, load_board
    from tinyfake.harness.protocol import Device
    from tinyfake.harness.qemu import QemuSim
    from tinyfake.report.memory import flash_bytes

    from bench_engine import TFLM_CMSIS_NN

    board = load_board("mps2-an500")
    result = {"description": __doc__.split("\n\n")[0].replace("\n", " "), "board": board.name, "models": {},
              "command": "scripts/bench_optimize.py " + " ".join(sys.argv[1:])}
    for name in args.models:
        tflite = MODELS / f"{name}.tflite"
        if not tflite.exists():
            print(f"{tflite} not found: skipped")
            continue
        row = {}
        for way in ("speed", "size"):
            with tempfile.TemporaryDirectory(prefix="tinyfake-optimize-") as tmp:
                cm = compile_model(tflite, Path(tmp) / "gen", optimize=way)
                fw = build_firmware(Path(tmp) / "gen", board, Path(tmp) / "fw", tflite=tflite)
                with QemuSim(fw.sim_elf, fw.board) as sim, Device(sim.url, instructions=sim.instructions) as dev:
                    dev.hello()
                    st = dev.selftest()  # raises unless the output equals TFLite Micro's
                    dev.exit(0)
                row[way] = {"weight_bytes": cm.weight_bytes, "arena_bytes": cm.arena_bytes, "flash_bytes": flash_bytes(fw.board_image.usage),
                            "instructions": st.instructions, "macs": cm.macs,
                            "selftest_equals_tflite_micro": True}
        row["flash_ratio"] = round(row["size"]["flash_bytes"] / row["speed"]["flash_bytes"], 3)
        for way in ("speed", "size"):
            row[way]["flash_vs_tflm_cmsis_nn"] = round(row[way]["flash_bytes"] / TFLM_CMSIS_NN[name]["flash_bytes"], 3)
        row["instructions_ratio"] = round(row["size"]["instructions"] / row["speed"]["instructions"], 3)
        result["models"][name] = row
        print(name, json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
