#!/usr/bin/env python3
"""The serial link while verifying: hex LOAD lines against binary LOAD frames.

Compiles a reference model of ../shared/bench/models (default phinet96compat:
a 96x96x3 input, 27,648 bytes), builds its firmware, and streams the same
random inputs through QEMU both ways, each output checked against TFLite
Micro. Per way: bytes to the device per image (every command, frame and
reply, measured by the host), their ratio to the input, seconds per image in
QEMU, and the seconds per image a board's link would take at its console
baud (8N1, 10 bits a byte). Writes bench/results/link.json.

    .venv/bin/python scripts/bench_link.py [--model phinet96compat] [--images 10]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MODELS = REPO.parent / "shared" / "bench" / "models"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="phinet96compat")
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--board", default="stm32h743")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "link.json")
    args = ap.parse_args()
    tflite = MODELS / f"{args.model}.tflite"
    if not tflite.exists():
        print(f"{tflite} not found: nothing to measure")
        return 0

    import numpy as np

    from tinyfake.compiler import compile_model
    from tinyfake.export.tflm import tflm_outputs
    from tinyfake.firmware import build_firmware, load_board
    from tinyfake.harness.protocol import Device
    from tinyfake.harness.qemu import QemuSim

    board = load_board(args.board)
    baud = int(board.console.get("baud", 115200))
    with tempfile.TemporaryDirectory(prefix="tinyfake-link-") as tmp:
        compile_model(tflite, Path(tmp) / "gen")
        fw = build_firmware(Path(tmp) / "gen", board, Path(tmp) / "fw", tflite=tflite)
        shape = fw.model.input_shape
        x = np.random.default_rng(0).integers(-128, 128, (args.images, *shape)).astype(np.int8)
        want = tflm_outputs(tflite, x)
        ways = {}
        for way, binary in (("hex lines", False), ("binary frames", True)):
            with QemuSim(fw.sim_elf, fw.board, count_instructions=False) as sim:
                with Device(sim.url, binary_load=binary) as dev:
                    info = dev.hello()
                    tx0, rx0, t0 = dev.stats.tx_bytes, dev.stats.rx_bytes, time.perf_counter()
                    equal = sum(dev.infer(xi).output.tolist() == wi.reshape(-1).tolist() for xi, wi in zip(x, want))
                    seconds = (time.perf_counter() - t0) / args.images
                    tx, rx = (dev.stats.tx_bytes - tx0) / args.images, (dev.stats.rx_bytes - rx0) / args.images
                    ways[way] = {"to_device_bytes_per_image": round(tx), "to_host_bytes_per_image": round(rx),
                                 "wire_per_input_byte": round(tx / info.input_bytes, 3),
                                 "qemu_seconds_per_image": round(seconds, 3),
                                 "board_seconds_per_image_at_baud": round(max(tx, rx) * 10 / baud, 3),
                                 "outputs_equal_to_tflite_micro": f"{equal}/{args.images}",
                                 "resent": dev.stats.resent}
                    dev.exit(0)
    result = {"description": __doc__.split("\n\n")[0], "model": args.model, "input_bytes": int(np.prod(shape)),
              "board": board.name, "baud": baud, "images": args.images, "ways": ways,
              "speedup_qemu": round(ways["hex lines"]["qemu_seconds_per_image"]
                                    / ways["binary frames"]["qemu_seconds_per_image"], 2),
              "command": "scripts/bench_link.py " + " ".join(sys.argv[1:])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
