"""`tinyfake build`: the main job, every stage in order.

train (or take --model) -> export int8 -> compile to C -> firmware for the
board and its simulator -> verify in simulation -> budget report. Each stage
writes its files into the run directory, so a failed stage can be re-run
alone with its own command.
"""
from __future__ import annotations

import argparse
import time

from tinyfake.models import CHANNELS, MODELS
from tinyfake.runs import RUNS_ROOT, RunDir

HELP = "the main job: train (or --model), export, compile, build firmware, verify in simulation"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", default="stm32h743", help="target board (see `tinyfake boards`)")
    p.add_argument("--model", metavar="RUN_DIR",
                   help="use this trained run instead of training the default model")
    p.add_argument("--data", metavar="PATH",
                   help="training data when no --model is given (default: the embedded demo set)")
    p.add_argument("--size", type=int, default=64, help="input size when training (default 64)")
    p.add_argument("--arch", default="phinet", choices=sorted(MODELS), help="model when training (default phinet)")
    p.add_argument("--channels", default="rgb", choices=CHANNELS,
                   help="model input when training: rgb, or rgb+fft+lbp (the board computes FFT and LBP)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: train's default)")
    p.add_argument("--name", default="default", help="run name when training (default: default)")
    p.add_argument("--limit", type=int, default=None, help="verify at most this many test images")


def _stage(title: str):
    print(f"\n== {title}", flush=True)
    return time.monotonic()


def run(args) -> int:
    from tinyfake.compiler.api import compile_model
    from tinyfake.errors import UserError
    from tinyfake.export.pipeline import export_run
    from tinyfake.firmware import build_for_run
    from tinyfake.firmware.boards import load_board
    from tinyfake.harness.verify import verify_run
    from tinyfake.train import make_config, train
    from tinyfake.train.command import check_run_name

    board = load_board(args.board)  # fail on a bad board before an expensive training run
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    if args.model:
        run_dir = RunDir.existing(args.model)
    else:
        extra = {"epochs": args.epochs} if args.epochs else {}
        config = make_config(args.data, args.size, args.arch,  # checks size and channels first
                             model_kwargs={"channels": args.channels}, **extra)
        t = _stage(f"train: {args.data or 'embedded demo data'} -> {RUNS_ROOT / args.name}")
        run_dir = RunDir(RUNS_ROOT / check_run_name(args.name))
        m = train(config, run_dir)
        print(f"  test accuracy {m['test']['accuracy']:.3f}, AUC {m['test']['auc']:.3f} "
              f"({time.monotonic() - t:.0f} s)")

    if args.model is None or not run_dir.tflite.exists():
        t = _stage("export: PyTorch -> int8 TFLite (ONNX + onnx2tf; binary nets: written directly) -> TFLite Micro C array")
        export_run(run_dir)
        print(f"  {run_dir.tflite} ({run_dir.tflite.stat().st_size:,} B), {run_dir.model_data_cc} "
              f"({time.monotonic() - t:.0f} s)")

    _stage("compile: int8 TFLite -> C with a static memory plan")
    cm = compile_model(run_dir.tflite, run_dir.gen, name=run_dir.root.name)
    print(f"  {len(cm.ops)} operators, {cm.macs:,} MACs, arena {cm.arena_bytes:,} B, "
          f"weights {cm.weight_bytes:,} B")

    _stage(f"firmware: {board.name} and its simulator map")
    fw = build_for_run(run_dir, board)
    for path in fw.outputs:
        print(f"  {path}")

    t = _stage("verify in simulation (QEMU mps2-an500, exact instruction counts)")
    report = verify_run(run_dir, board, simulate=True, limit=args.limit)
    print(f"  ({time.monotonic() - t:.0f} s)\n")
    print(report["text"])
    v = report["verification"]
    if v["identical"] != v["n"]:
        print(f"tinyfake: error: {v['n'] - v['identical']} of {v['n']} device outputs differ "
              "from the host's int8 outputs")
        return 1
    return 0
