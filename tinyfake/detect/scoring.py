"""Per-face int8 scores from a run's int8 model, on one of four engines.

- `host` (default): tinyfake's compiled C (`runs/<name>/gen/`) built for
  this machine with gcc (`tinyfake.compiler.hostbuild`): the code the board runs.
- `tflite`: the TFLite Micro interpreter from the `tflite-micro` wheel.
- `simulate`: the run's firmware in QEMU over the serial protocol.
- `device`: a board on a serial port (`--port`), flashed with the run's firmware.

All four take the same int8 input (the face crop quantized with the model's
input scale) and return the raw int8 output; the score is
P(fake) = sigmoid(dequantized logit). An RGB + FFT + LBP run's host engines
get the five channels from tinyfake.data.channels.model_images; its board
(or simulator) gets the RGB crop and computes them itself.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tinyfake.errors import UserError
from tinyfake.firmware.boards import DEFAULT_BOARD
from tinyfake.runs import RUNS_ROOT, RunDir, only_run

BACKENDS = ("host", "tflite", "simulate")


def find_run(path: str | None, runs_root: Path = RUNS_ROOT) -> RunDir:
    """The run named, or the only exported one under runs/; it must hold model_int8.tflite."""
    if path is None:
        run = only_run("model_int8.tflite", "give one with --run (train and export it with "
                       "`tinyfake train` and `tinyfake export`)", runs_root)
        run.require_current_export()
        return run
    if not Path(path).is_dir():
        raise UserError(f"run {path} does not exist; give a run directory with --run")
    run = RunDir(Path(path))
    if not run.tflite.exists():
        raise UserError(f"{path} has no model_int8.tflite; run `tinyfake export {path}` first")
    run.require_current_export()
    return run


def _ensure_gen(run: RunDir, log) -> None:
    """run/gen compiled from this run's .tflite (compiled now when missing or stale)."""
    from tinyfake.compiler.api import compile_run, why_compile_stale

    reason = why_compile_stale(run)
    if reason is None:
        return
    log(f"compile: {reason}, compiling {run.tflite} -> {run.gen}/ ...")
    compile_run(run)


class Scorer:
    """`outputs(int8 inputs (N,H,W,C)) -> int8 outputs (N, out_bytes)`; `scores` applies the sigmoid."""

    def __init__(self, run: RunDir, backend: str, describe: str, infer, *, device_makes_input: bool = False):
        from tinyfake.export.tflite_int8 import io_quant
        from tinyfake.firmware.build import run_channels

        self.run, self.backend, self.describe, self._infer = run, backend, describe, infer
        self.in_q, self.out_q = io_quant(run.tflite)
        self.size = int(self.in_q.shape[1])
        self.channels = run_channels(run) if run.config.exists() else (
            "rgb+fft+lbp" if self.in_q.shape[3:] == (5,) else "rgb")
        want = 5 if self.channels != "rgb" else 3
        if self.in_q.shape[1] != self.in_q.shape[2] or self.in_q.shape[3] != want:
            raise UserError(f"{run.tflite} takes {self.in_q.shape[1:]} inputs; detect needs square RGB faces")
        # a board running an RGB + FFT + LBP model takes the RGB crop itself
        self.device_makes_input = device_makes_input
        self.model_hash = hashlib.sha256(run.tflite.read_bytes()).hexdigest()[:16]

    def quantize(self, faces_uint8: np.ndarray) -> np.ndarray:
        """What the engine takes for uint8 RGB crops: the int8 model input, or
        the crops themselves for a board that computes its input."""
        from tinyfake.data.channels import model_images
        from tinyfake.data.tensors import quantize_input
        if self.device_makes_input:
            return np.asarray(faces_uint8, np.uint8)
        return quantize_input(model_images(self.channels, faces_uint8), self.in_q.scale, self.in_q.zero_point)

    def outputs(self, q: np.ndarray) -> np.ndarray:
        if len(q) == 0:
            return np.zeros((0, int(np.prod(self.out_q.shape[1:]))), np.int8)
        return np.stack([np.asarray(self._infer(x), np.int8).reshape(-1) for x in q])

    def scores(self, raw: np.ndarray) -> np.ndarray:
        from tinyfake.export.tflite_int8 import dequantize
        logit = dequantize(np.asarray(raw, np.int8), self.out_q).reshape(len(raw), -1)[:, -1]
        return 1.0 / (1.0 + np.exp(-logit.astype(np.float64)))


@contextmanager
def open_scorer(run: RunDir, backend: str = "host", *, port: str | None = None,
                board: str = DEFAULT_BOARD, log=print):
    """Yield a `Scorer` for the run on `backend` (host, tflite, simulate) or on a board at `port`."""
    if port is not None:
        backend = "device"
    if backend == "host":
        from tinyfake.compiler.hostbuild import HostModel, build_host
        from tinyfake.firmware.model_header import read_model_header

        _ensure_gen(run, log)
        info = read_model_header(run.gen)
        model = HostModel(build_host(run.gen), info.input_bytes, info.output_bytes)
        yield Scorer(run, "host", "tinyfake compiled C (host build)", model.run)
    elif backend == "tflite":
        from tinyfake.export.tflm import tflm_outputs
        yield Scorer(run, "tflite", "TFLite Micro (host interpreter)",
                     lambda x: tflm_outputs(run.tflite, x[None])[0])
    elif backend in ("simulate", "device"):
        from tinyfake.firmware.boards import load_board
        from tinyfake.harness.target import connect
        from tinyfake.harness.verify import check_run, ensure_firmware

        _ensure_gen(run, log)
        b = load_board(board)
        model = check_run(run)
        elf, sim_elf = ensure_firmware(run, b, log)
        with connect(b, port=port, simulate=backend == "simulate", sim_elf=sim_elf, board_elf=elf,
                     expected_hash=model.hash) as (dev, platform):
            info = dev.hello()
            yield Scorer(run, backend, platform, lambda x: dev.infer(x).output,
                         device_makes_input=info.takes_rgb)
    else:
        raise UserError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
