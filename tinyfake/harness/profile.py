"""Per-operator instruction counts of a run's model on the simulated board.

The run's compiled C brackets every operator with MODEL_OP_BEGIN; a second
firmware build (`profile_ops`) makes that a call to `tf_mark_op`, whose
address the QEMU plugin watches, so one inference yields the instructions
executed from each operator's start to the next one's. Each marker call
costs a few instructions of its own: the difference from the plain
firmware's count, spread evenly over the operators, is taken off.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyfake.errors import UserError
from tinyfake.firmware.boards import Board


def profile_ops(gen: Path, tflite: Path, board: Board, out_dir: Path, x: np.ndarray,
                plain_instructions: int, channels: str = "rgb", ops: list | None = None) -> dict:
    """{"ops": one row per operator, "by_type": totals per operator type,
    "marker_overhead": instructions one marker call took}. `x`: what the
    device loads for one inference; `plain_instructions`: the count of one
    inference on the firmware without markers; `ops`: gen/'s operators
    (compiler.api.layers, lowered as gen/ was), else `tflite`'s with the defaults."""
    from tinyfake.compiler.api import layers
    from tinyfake.firmware.build import build_firmware
    from tinyfake.harness.protocol import Device
    from tinyfake.harness.qemu import QemuSim

    ops = ops if ops is not None else layers(tflite)  # names, kernels and MACs, in call order
    build = build_firmware(gen, board, out_dir, tflite=tflite, profile_ops=True, channels=channels)
    with QemuSim(build.sim_elf, build.board) as sim:
        with Device(sim.url, instructions=sim.instructions, expected_hash=build.model.hash) as dev:
            dev.hello()
            total = dev.infer(x).instructions
            dev.exit(0)
        sim.wait()
        per_op = sim.instructions.ops
    if len(per_op) != len(ops):
        raise UserError(f"the profiling firmware marked {len(per_op)} operators, the model has {len(ops)}; "
                        "recompile the run (`tinyfake compile`)")
    overhead = max(0.0, (total - plain_instructions) / len(ops))
    rows, by_type = [], {}
    for op, n in zip(ops, per_op):
        n = max(0, int(round(n - overhead)))
        rows.append({"index": op.index, "op": op.name, "kernel": op.kernel, "macs": op.macs,
                     "instructions": n, "per_mac": round(n / op.macs, 2) if op.macs else None,
                     "share": round(n / plain_instructions, 4)})
        t = by_type.setdefault(op.name, {"count": 0, "macs": 0, "instructions": 0})
        t["count"] += 1
        t["macs"] += op.macs
        t["instructions"] += n
    for t in by_type.values():
        t["per_mac"] = round(t["instructions"] / t["macs"], 2) if t["macs"] else None
        t["share"] = round(t["instructions"] / plain_instructions, 4)
    return {"ops": rows, "by_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1]["instructions"])),
            "marker_overhead": round(overhead, 1), "instructions": plain_instructions,
            "elf": str(build.sim_elf)}

