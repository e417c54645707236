"""Export a trained run: model.pt -> model.onnx -> model_int8.tflite -> model_data.cc/.h."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyfake.data.channels import model_images
from tinyfake.errors import UserError
from tinyfake.export.binary_tflite import binary_tflite, is_binary
from tinyfake.export.c_array import write_c_array
from tinyfake.export.onnx_export import DEFAULT_OPSET, check_opset, export_onnx
from tinyfake.export.tflite_int8 import convert_int8
from tinyfake.export.tflm import tflm_outputs
from tinyfake.files import write_atomic
from tinyfake.runs import RUNS_ROOT, RunDir, only_run

DEFAULT_CALIB_IMAGES = 300


def find_run(path: str | None, runs_root: Path = RUNS_ROOT) -> RunDir:
    """The run the user named, or the only trained one under runs/."""
    run = RunDir.existing(path) if path is not None else only_run(
        "model.pt", "give the run directory (train one with `tinyfake train`)", runs_root)
    run.require_trained()
    return run


def calibration_images(train_x: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to n training images (seeded sample), float NHWC in [0, 1] like the model input."""
    from tinyfake.data.tensors import to_float_nhwc

    if n < 1:
        raise UserError(f"--calib-images must be at least 1, got {n}")
    if len(train_x) == 0:
        raise UserError("the run's train split is empty: nothing to calibrate the int8 model on")
    idx = np.sort(np.random.default_rng(seed).permutation(len(train_x))[:n])
    return to_float_nhwc(train_x[idx])


def export_options(calib_images: int = DEFAULT_CALIB_IMAGES, opset: int = DEFAULT_OPSET) -> dict:
    return {"calib_images": calib_images, "opset": opset}


def why_export_stale(run: RunDir, **options) -> str | None:
    """None when the run's int8 model was exported from its model.pt as it is now."""
    return run.manifest.why_stale("export", run.export_inputs(), export_options(**options))


def export_run(run: RunDir, calib_images: int = DEFAULT_CALIB_IMAGES,
               opset: int = DEFAULT_OPSET, log=print) -> dict:
    """Write model.onnx, model_int8.tflite, model_data.cc/.h into the run
    (binary networks: no model.onnx, see tinyfake.export.binary_tflite), recorded
    in the run's manifest."""
    with run.lock():
        return _export(run, calib_images, opset, log)


def _export(run: RunDir, calib_images: int, opset: int, log) -> dict:
    from tinyfake.train import load_trained, splits_from_config

    check_opset(opset)
    model, config = load_trained(run)
    run.manifest.forget("export")  # a failure below must not leave the old record vouching for new files
    size = int(config["data"]["size"])
    log(f"  reading the run's faces (its split as trained: {config['data']['source']}) ...")
    splits = splits_from_config(config)
    train_x = model_images(config, splits.train.x)  # RGB, or R, G, B, FFT, LBP
    calib = calibration_images(train_x, calib_images, int(config["data"].get("seed", 0)))
    if is_binary(model):
        # tinyfake writes a binary net's int8 form itself (binary_tflite), no ONNX
        run.onnx.unlink(missing_ok=True)
        write_atomic(run.tflite, binary_tflite(model, calib))
    else:
        log(f"  model.pt -> model.onnx (opset {opset}) -> model_int8.tflite (onnx2tf, calibrated on "
            f"{len(calib)} training faces; ~20 s) ...")
        export_onnx(model, size, run.onnx, opset)
        convert_int8(run.onnx, calib, run.tflite)
    # Load it once in TFLite Micro: catches int8 kernels TFLM lacks early.
    tflm_outputs(run.tflite, train_x[:1])
    write_c_array(run.tflite, run.model_data_cc, run.model_data_h)
    outputs = [p for p in (run.onnx, run.tflite, run.model_data_cc, run.model_data_h) if p.exists()]
    run.manifest.record("export", run.export_inputs(), export_options(calib_images, opset), outputs)
    return {"onnx": run.onnx if run.onnx.exists() else None, "tflite": run.tflite, "model_data_cc": run.model_data_cc,
            "model_data_h": run.model_data_h, "calib_images": len(calib), "opset": opset}
