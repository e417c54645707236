"""TFLite Micro on the host: the `tflite-micro` wheel's interpreter.

Its outputs equal TFLite's reference kernels bit for bit; it is the oracle
for everything that runs on the device.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyfake.errors import UserError
from tinyfake.export.tflite_int8 import quantized_inputs

# Generous: the largest models tinyfake targets need a few hundred KB.
DEFAULT_ARENA = 8 << 20


@dataclass(frozen=True)
class ArenaUsage:
    """What TFLite Micro's recording allocator reports after one inference.

    `total` = `head` (the planned activation buffers, independent of the
    host) + `tail` (persistent structures: these hold pointers, so they are
    larger on the 64-bit host than on a 32-bit MCU).
    """
    total: int
    head: int
    tail: int


def _interpreter(tflite_path: str | Path, arena_size: int):
    from tflite_micro.python.tflite_micro import runtime
    try:
        return runtime.Interpreter.from_bytes(Path(tflite_path).read_bytes(), arena_size=arena_size)
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"TFLite Micro cannot load {tflite_path}: {str(exc).strip().splitlines()[0]}"
                        ) from None


def tflm_outputs(tflite_path: str | Path, x: np.ndarray, arena_size: int = DEFAULT_ARENA) -> np.ndarray:
    """Raw int8 outputs (N, *output_shape[1:]) of TFLite Micro.

    `x`: uint8 NHWC images or int8 model inputs (see `quantized_inputs`).
    """
    q = quantized_inputs(tflite_path, x)
    interp = _interpreter(tflite_path, arena_size)
    outs = []
    for sample in q:
        # The planner shares the input buffer with later tensors: write it
        # again before every inference.
        interp.set_input(np.ascontiguousarray(sample[None]), 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0))[0].copy())
    return np.stack(outs).astype(np.int8)


def _capture_fd2(fn) -> str:
    """Run `fn` and return what C++ code wrote to the process's stderr."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode(errors="replace")


def tflm_arena_usage(tflite_path: str | Path, arena_size: int = DEFAULT_ARENA) -> ArenaUsage:
    """Arena bytes TFLite Micro actually uses for this model (after one inference)."""
    from tinyfake.export.tflite_int8 import io_quant

    inp, _ = io_quant(tflite_path)
    interp = _interpreter(tflite_path, arena_size)
    interp.set_input(np.zeros(inp.shape, np.int8), 0)
    interp.invoke()
    # The wheel only exposes the recording allocator's report, printed by C++.
    text = _capture_fd2(interp.print_allocations)
    found = {k: re.search(rf"Arena allocation {k} (\d+) bytes", text) for k in ("total", "head", "tail")}
    if not all(found.values()):
        raise RuntimeError(f"unexpected TFLite Micro allocation report: {text[:200]!r}")
    return ArenaUsage(**{k: int(m.group(1)) for k, m in found.items()})


def tflm_arena_bytes(tflite_path: str | Path) -> int:
    """Total arena bytes used by TFLite Micro on this (64-bit) host."""
    return tflm_arena_usage(tflite_path).total


def first_divergent_op(tflite_path: str | Path, x: np.ndarray) -> dict | None:
    """The first operator whose output differs between TFLite Micro and TFLite's
    reference kernels for one input (uint8 image or int8 tensor, batch 1),
    or None when every operator agrees. Both interpreters keep all tensors.
    """
    from tflite_micro.python.tflite_micro import runtime

    from tinyfake.export.tflite_int8 import op_names, read_model, reference_interpreter

    q = quantized_inputs(tflite_path, x)[:1]
    ref = reference_interpreter(tflite_path, preserve_all_tensors=True)
    ref.set_tensor(ref.get_input_details()[0]["index"], q)
    ref.invoke()
    micro = runtime.Interpreter.from_bytes(
        Path(tflite_path).read_bytes(), arena_size=DEFAULT_ARENA,
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    micro.set_input(np.ascontiguousarray(q), 0)
    micro.invoke()
    graph = read_model(tflite_path).subgraphs[0]
    names = op_names(tflite_path)
    for i, op in enumerate(graph.operators):
        t = int(op.outputs[0])
        a = ref.get_tensor(t).astype(np.int32).ravel()
        b = np.asarray(micro.GetTensor(t, 0)["tensor_data"]).astype(np.int32).ravel()
        if not np.array_equal(a, b):
            return {"op_index": i, "op": names[i], "elements": int((a != b).sum()),
                    "max_abs_diff": int(np.abs(a - b).max())}
    return None
