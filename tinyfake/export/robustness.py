"""Compression robustness: the run's metrics after the test faces are JPEG
re-encoded (and optionally down- and up-scaled), as social platforms do.

For each condition the same images go through float PyTorch, int8 TFLite
(reference kernels) and int8 TFLite Micro (what the device computes).
"""
from __future__ import annotations

import json
import math

import numpy as np

from tinyfake.data.channels import channels_of, model_images
from tinyfake.data.compress import jpeg_recompress, resize_roundtrip
from tinyfake.errors import UserError
from tinyfake.export.evaluate import WAYS, _json_safe, _sigmoid
from tinyfake.export.tflite_int8 import dequantize, io_quant, tflite_int8_outputs
from tinyfake.export.tflm import tflm_outputs
from tinyfake.metrics import binary_metrics


def parse_qualities(text: str) -> list[int]:
    """"95,75,50" -> [95, 75, 50]; a UserError for anything else."""
    try:
        qualities = [int(q) for q in text.split(",") if q.strip()]
    except ValueError:
        qualities = []
    if not qualities or not all(1 <= q <= 100 for q in qualities):
        raise UserError(f"--jpeg takes JPEG qualities 1..100 separated by commas (e.g. 95,75,50), got {text!r}")
    return qualities


def conditions(qualities: list[int], resize: float | None) -> list[tuple[str, int | None]]:
    """(name, quality) per condition: the original images first, then each quality."""
    if resize is not None and not 0 < resize <= 1:
        raise UserError(f"--resize must be in (0, 1] (the downscale factor), got {resize}")
    pre = f"resize{resize:g}_" if resize else ""
    out = [("original", None)] + [(f"{pre}jpeg{q}", q) for q in qualities]
    if resize:
        out.insert(1, (f"resize{resize:g}", None))
    return out


def degrade(x: np.ndarray, quality: int | None, resize: float | None, name: str) -> np.ndarray:
    if name == "original":
        return x
    if resize:
        x = resize_roundtrip(x, resize)
    return jpeg_recompress(x, quality) if quality is not None else x


def robustness(model, tflite, x: np.ndarray, y: np.ndarray, qualities: list[int],
               resize: float | None = None, channels: str | dict = "rgb") -> dict:
    """{condition: {way: metrics}} for float, int8 reference and TFLite Micro.
    `channels`: the run's input channels (or config); the int8 models get
    `model_images(channels, degraded faces)`, the float model the faces."""
    from tinyfake.train import predict

    _, out_q = io_quant(tflite)
    result = {}
    for name, quality in conditions(qualities, resize):
        xc = degrade(x, quality, resize, name)
        xm = model_images(channels, xc)
        scores = {
            "float": predict(model, xc),
            "int8_ref": _sigmoid(dequantize(tflite_int8_outputs(tflite, xm), out_q)).ravel(),
            "int8_tflm": _sigmoid(dequantize(tflm_outputs(tflite, xm), out_q)).ravel(),
        }
        result[name] = {way: binary_metrics(y, s) for way, s in scores.items()}
        result[name]["jpeg_quality"] = quality
        result[name]["resize"] = resize if name != "original" else None
    return result


def add_robustness(result: dict, run, qualities: list[int], resize: float | None,
                   data: str | None = None, limit: int | None = None) -> dict:
    """Run `robustness` on the images `result` (from evaluate_run) used, and add it
    to `result` and its eval json."""
    from tinyfake.export.evaluate import _images
    from tinyfake.train import load_trained

    model, config = load_trained(run)
    ds, _ = _images(config, data, limit)
    result["robustness"] = robustness(model, run.tflite, ds.x, ds.y, qualities, resize,
                                      channels=channels_of(config))
    path = result["path"]
    on_disk = json.loads(open(path).read())
    on_disk["robustness"] = _json_safe(result["robustness"])
    with open(path, "w") as f:
        f.write(json.dumps(on_disk, indent=2) + "\n")
    return result


def robustness_table(rob: dict) -> str:
    def num(v):
        return "  n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:5.3f}"

    ways = list(WAYS)
    lines = ["  compression robustness (AUC / accuracy):",
             f"  {'condition':18s}" + "".join(f"{WAYS[w]:>28s}" for w in ways)]
    for name, r in rob.items():
        cells = "".join(f"{num(r[w]['auc']) + ' / ' + num(r[w]['accuracy']):>28s}" for w in ways)
        lines.append(f"  {name:18s}{cells}")
    return "\n".join(lines)
