"""Three-way evaluation of an exported run on the same images.

float PyTorch, int8 TFLite (reference kernels) and int8 TFLite Micro (the
device's interpreter). Scores are P(fake) = sigmoid(dequantized logit).
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from tinyfake.data.channels import model_images
from tinyfake.errors import UserError
from tinyfake.export.tflite_int8 import dequantize, io_quant, op_names, tflite_int8_outputs
from tinyfake.export.tflm import first_divergent_op, tflm_arena_usage, tflm_outputs
from tinyfake.files import write_atomic
from tinyfake.metrics import auc_interval, binary_metrics, per_category_metrics
from tinyfake.runs import RunDir

WAYS = {"float": "float PyTorch", "int8_ref": "int8 TFLite (reference)",
        "int8_tflm": "int8 TFLite Micro"}


def eval_json_path(run: RunDir, data: str | None, limit: int | None = None) -> Path:
    """eval.json, eval_<dataset>.json, eval_limit<N>.json (roc.png and the
    benchmarks read eval.json)."""
    return run.result_path("eval", data, limit)


def scores_path(eval_json: Path) -> Path:
    """eval.json -> eval_scores.npz: labels and each way's P(fake) per image."""
    return Path(eval_json).with_name(Path(eval_json).stem + "_scores.npz")


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v.astype(np.float64)))


def _images(config: dict, data: str | None, limit: int | None):
    """(dataset, description): the run's test split, or all of `data`."""
    from tinyfake.data import load_dataset
    from tinyfake.train import splits_from_config

    size = int(config["data"]["size"])
    if data is None:
        ds, what = splits_from_config(config).test, "test split"
        if len(ds) == 0:
            raise UserError("the run's test split is empty (fractions give it nothing); "
                            "evaluate on another dataset with --data")
    else:
        ds, what = load_dataset(data, size), f"all of {data}"
    if limit is not None and limit < len(ds):
        if limit < 1:
            raise UserError(f"--limit must be at least 1, got {limit}")
        # A seeded sample rather than the first N, which may all be one class.
        idx = np.sort(np.random.default_rng(0).permutation(len(ds))[:limit])
        ds, what = ds.subset(idx), f"{what} (seeded sample of {limit})"
    return ds, what


def evaluate_run(run: RunDir, data: str | None = None, limit: int | None = None) -> dict:
    """Evaluate the run's model.pt and model_int8.tflite three ways; write and return the result."""
    from tinyfake.train import load_trained, predict

    if not run.tflite.exists():
        raise UserError(f"{run.root} has no model_int8.tflite; run `tinyfake export {run.root}` first")
    run.require_current_export()
    model, config = load_trained(run)
    ds, what = _images(config, data, limit)
    tflite = run.tflite
    _, out_q = io_quant(tflite)

    xm = model_images(config, ds.x)  # what the int8 model takes (RGB, or R, G, B, FFT, LBP)
    q_ref = tflite_int8_outputs(tflite, xm)
    q_tflm = tflm_outputs(tflite, xm)
    scores = {
        "float": predict(model, ds.x),
        "int8_ref": _sigmoid(dequantize(q_ref, out_q)).ravel(),
        "int8_tflm": _sigmoid(dequantize(q_tflm, out_q)).ravel(),
    }
    differs = np.any(q_ref.reshape(len(ds), -1) != q_tflm.reshape(len(ds), -1), axis=1)
    divergence = None
    if differs.any():  # say where the two interpreters part ways
        divergence = first_divergent_op(tflite, xm[int(np.argmax(differs))][None])
    gap = np.abs(scores["float"] - scores["int8_tflm"])  # int8 = what the device computes
    arena = tflm_arena_usage(tflite)
    data_bytes = tflite.read_bytes()
    result = {
        "run": str(run.root),
        "data": what,
        "n": len(ds),
        "counts": ds.counts(),
        "metrics": {way: {**binary_metrics(ds.y, s), "auc_ci95": auc_interval(ds.y, s, ds.group)}
                    for way, s in scores.items()},
        "tflm_vs_ref_mismatched_images": int(differs.sum()),
        "tflm_vs_ref_first_divergence": divergence,
        # int8 output steps between the two interpreters (rounding ties; see tests/fixtures/oracle.py)
        "tflm_vs_ref_max_output_steps": int(np.abs(q_ref.astype(np.int32) - q_tflm.astype(np.int32)).max(initial=0)),
        "max_abs_score_diff_float_vs_int8": float(np.max(gap)),
        "mean_abs_score_diff_float_vs_int8": float(np.mean(gap)),
        # same real/fake call at the 0.5 threshold
        "decision_agreement_float_vs_int8": float(np.mean((scores["float"] >= 0.5) == (scores["int8_tflm"] >= 0.5))),
        "tflm_arena_bytes": arena.total,
        "tflm_arena_activation_bytes": arena.head,
        "tflm_arena_persistent_bytes": arena.tail,
        "model_bytes": len(data_bytes),
        "model_sha256_16": hashlib.sha256(data_bytes).hexdigest()[:16],
        "num_ops": len(op_names(tflite)),
    }
    if (ds.category != "").any():  # per manipulation method / platform (tinyfake.data.layouts)
        result["per_category"] = {way: per_category_metrics(ds.y, s, ds.category) for way, s in scores.items()}
    path = eval_json_path(run, data, limit)
    write_atomic(path, json.dumps(_json_safe(result), indent=2) + "\n")
    # Per-image scores beside it, for ROC plots (tinyfake.report.plots).
    np.savez(scores_path(path), y=ds.y, **scores)
    result["path"] = str(path)
    return result


def _json_safe(obj):
    """NaN -> null: JSON has no NaN."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def summary_table(result: dict) -> str:
    """A few lines for the terminal."""
    def num(v):
        return "   n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:6.3f}"

    lines = [f"{result['run']}: {result['data']}, {result['n']} images "
             f"({result['counts']['real']} real, {result['counts']['fake']} fake)",
             f"  {'':26s} accuracy    auc     f1    eer"]
    for way, label in WAYS.items():
        m = result["metrics"][way]
        lines.append(f"  {label:26s}   {num(m['accuracy'])} {num(m['auc'])} {num(m['f1'])} {num(m['eer'])}")
    for cat, m in result.get("per_category", {}).get("int8_tflm", {}).items():
        lines.append(f"    {cat[:24]:24s}   {num(m['accuracy'])} {num(m['auc'])} {num(m['f1'])} {num(m['eer'])}"
                     f"  (int8 TFLite Micro, n={m['n']})")
    bad = result["tflm_vs_ref_mismatched_images"]
    agree = f"TFLite Micro == TFLite reference on {result['n'] - bad}/{result['n']} images"
    if bad:
        d = result["tflm_vs_ref_first_divergence"]
        agree += f" (first divergence: op {d['op_index']} {d['op']}, max diff {d['max_abs_diff']})" if d else ""
    lines += [f"  {agree}",
              f"  |float - int8 score|: max {result['max_abs_score_diff_float_vs_int8']:.4f}, "
              f"mean {result['mean_abs_score_diff_float_vs_int8']:.4f}; same decision on "
              f"{100 * result['decision_agreement_float_vs_int8']:.1f}% of images",
              f"  model {result['model_bytes']:,} B, {result['num_ops']} ops; TFLite Micro arena "
              f"{result['tflm_arena_bytes']:,} B on this 64-bit host "
              f"({result['tflm_arena_activation_bytes']:,} B activations)"]
    return "\n".join(lines)
