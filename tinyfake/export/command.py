"""`tinyfake export`: int8 TFLite + TFLite Micro C array of a trained run, then evaluate it."""
from __future__ import annotations

import argparse

HELP = ("quantize a trained run to int8 TFLite (onnx2tf) and a TFLite Micro C array, "
        "then evaluate float vs int8 vs TFLite Micro")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR",
                   help="run directory (default: the only trained run under runs/)")
    p.add_argument("--calib-images", type=int, default=300, metavar="N",
                   help="training images to calibrate the int8 ranges on (default 300)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, at least 14 (default 17)")
    p.add_argument("--no-eval", action="store_true", help="export only, skip the evaluation")


def run(args) -> int:
    from tinyfake.export.pipeline import find_run

    run_dir = find_run(args.run_dir)
    with run_dir.lock():
        return _export(run_dir, args)


def _export(run_dir, args) -> int:
    from tinyfake.export.evaluate import evaluate_run, summary_table
    from tinyfake.export.pipeline import export_run

    out = export_run(run_dir, calib_images=args.calib_images, opset=args.opset)
    onnx = f"model.onnx (opset {out['opset']}), " if out["onnx"] else ""
    print(f"exported {run_dir.root}: {onnx}model_int8.tflite "
          f"({out['tflite'].stat().st_size:,} B, calibrated on {out['calib_images']} training images), "
          "model_data.cc/.h")
    if not args.no_eval:
        result = evaluate_run(run_dir)
        print(summary_table(result))
        print(f"  wrote {result['path']}")
    return 0
