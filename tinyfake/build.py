"""`tinyfake build`: the main job, every stage in order.

train (or take --model) -> export int8 -> compile to C -> firmware for the
board and its simulator -> verify in simulation -> budget report (-> with
--flash, the board ELF onto the connected board). Each stage
writes its files into the run directory, so a failed stage can be re-run
alone with its own command.
"""
from __future__ import annotations

import argparse
import time

from tinyfake.firmware.boards import DEFAULT_BOARD
from tinyfake.harness.flash import FLASHERS
from tinyfake.models import CHANNELS, MODELS
from tinyfake.runs import RUNS_ROOT, RunDir

HELP = "the main job: train (or --model), export, compile, build firmware, verify in simulation"


TRAINING_OPTIONS = ("data", "size", "arch", "channels", "epochs", "name", "force")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", default=DEFAULT_BOARD, help="target board (see `tinyfake boards`)")
    p.add_argument("--model", metavar="RUN_DIR",
                   help="use this trained run instead of training the default model (its stages "
                        "run again only where an input changed)")
    t = p.add_argument_group("training (without --model)")
    t.add_argument("--data", metavar="PATH", help="training data (default: the embedded demo set)")
    t.add_argument("--size", type=int, help="input size in pixels (default 64)")
    t.add_argument("--arch", choices=sorted(MODELS), help="model (default phinet)")
    t.add_argument("--channels", choices=CHANNELS,
                   help="model input: rgb (default), or rgb+fft+lbp (the board computes FFT and LBP)")
    t.add_argument("--epochs", type=int, default=None, help="training epochs (default: train's default)")
    t.add_argument("--name", help="run name (default: default)")
    t.add_argument("--force", action="store_true",
                   help="retrain the run if it exists (deletes what it holds)")
    p.add_argument("--limit", type=int, default=None, help="verify at most this many test images")
    f = p.add_argument_group("deploy")
    f.add_argument("--flash", action="store_true",
                   help="after the simulated verification passes, flash the firmware to the connected board")
    f.add_argument("--with", dest="flasher", choices=FLASHERS, help="flasher (default: the board's, pyocd)")
    f.add_argument("--probe", help="probe unique id / serial when several are connected")


def _stage(title: str):
    print(f"\n== {title}", flush=True)
    return time.monotonic()


def run(args) -> int:
    from tinyfake.errors import UserError
    from tinyfake.firmware.boards import load_board
    from tinyfake.train.command import check_new_run, check_run_name

    board = load_board(args.board)  # fail on a bad board before an expensive training run
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    if args.flash:
        from tinyfake.harness.flash import check_flasher
        args.flasher = check_flasher(board, args.flasher)
    elif args.flasher or args.probe:
        raise UserError("--with and --probe choose how to flash; add --flash")
    if args.model:
        given = [f"--{o}" for o in TRAINING_OPTIONS if getattr(args, o) not in (None, False)]
        if given:
            raise UserError(f"{', '.join(given)} train a new model; --model {args.model} takes that "
                            "run as it was trained (retrain it with `tinyfake train` to change them)")
        run_dir = RunDir.existing(args.model)
        run_dir.require_trained()
    else:
        run_dir = RunDir(RUNS_ROOT / check_run_name(args.name or "default"))
        check_new_run(run_dir, args.force)
    with run_dir.lock():
        return _build(args, board, run_dir)


def _build(args, board, run_dir: RunDir) -> int:
    from tinyfake.compiler.api import compile_run, why_compile_stale
    from tinyfake.export.pipeline import export_run, why_export_stale
    from tinyfake.firmware.build import build_for_run, why_firmware_stale
    from tinyfake.harness.verify import verify_run
    from tinyfake.train import make_config, train

    if not args.model:
        extra = {"epochs": args.epochs} if args.epochs else {}
        config = make_config(args.data, args.size or 64, args.arch or "phinet",  # checks size and channels first
                             model_kwargs={"channels": args.channels or "rgb"}, **extra)
        t = _stage(f"train: {args.data or 'embedded demo data'} -> {run_dir.root}")
        m = train(config, run_dir)
        print(f"  test accuracy {m['test']['accuracy']:.3f}, AUC {m['test']['auc']:.3f} "
              f"({time.monotonic() - t:.0f} s)")

    # Each stage runs when something it is made from changed (tinyfake.provenance), and says what.
    reason = why_export_stale(run_dir)
    t = _stage("export: PyTorch -> int8 TFLite (ONNX + onnx2tf; binary nets: written directly) -> TFLite Micro C array")
    if reason is None:
        print(f"  up to date: {run_dir.tflite} was exported from this model.pt")
    else:
        print(f"  {reason}: exporting")
        export_run(run_dir)
        print(f"  {run_dir.tflite} ({run_dir.tflite.stat().st_size:,} B), {run_dir.model_data_cc} "
              f"({time.monotonic() - t:.0f} s)")

    reason = why_compile_stale(run_dir)
    _stage("compile: int8 TFLite -> C with a static memory plan")
    if reason is None:
        print(f"  up to date: {run_dir.gen}/ was compiled from this model_int8.tflite")
    else:
        print(f"  {reason}: compiling")
        cm = compile_run(run_dir)
        print(f"  {len(cm.ops)} operators, {cm.macs:,} MACs, arena {cm.arena_bytes:,} B, "
              f"weights {cm.weight_bytes:,} B")

    reason = why_firmware_stale(run_dir, board)
    _stage(f"firmware: {board.name} and its simulator map")
    if reason is None:
        print(f"  up to date: {run_dir.fw}/ was built from this gen/, board and firmware source")
    else:
        print(f"  {reason}: building")
        fw = build_for_run(run_dir, board)
        for path in fw.outputs:
            print(f"  {path}")

    t = _stage("verify in simulation (QEMU mps2-an500, exact instruction counts)")
    report = verify_run(run_dir, board, simulate=True, limit=args.limit, profile=True)
    print(f"  ({time.monotonic() - t:.0f} s)\n")
    print(report["text"])
    print(f"  wrote {' and '.join(report['written'])}")
    v = report["verification"]
    if v["identical"] != v["n"]:
        print(f"tinyfake: error: {v['n'] - v['identical']} of {v['n']} device outputs differ "
              "from the host's int8 outputs")
        return 1
    if args.flash:
        from tinyfake.harness.flash import flash
        from tinyfake.harness.verify import firmware_paths

        elf, _ = firmware_paths(run_dir, board)
        _stage(f"flash: {elf} -> {board.name} with {args.flasher}")
        print(f"  {flash(board, elf, elf.with_suffix('.bin'), args.flasher, args.probe)}")
        print(f"  check it on the board: tinyfake verify --run {run_dir.root} --board {board.name} "
              "--port /dev/ttyACM0")
    return 0
