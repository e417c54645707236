"""`tinyfake eval`: float vs int8 TFLite vs TFLite Micro on the same images."""
from __future__ import annotations

import argparse

HELP = ("evaluate an exported run three ways (float PyTorch, int8 TFLite reference kernels, "
        "TFLite Micro) and write eval.json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR",
                   help="run directory (default: the only trained run under runs/)")
    p.add_argument("--data", metavar="PATH",
                   help="evaluate on every image of this dataset (folder with real/ and fake/, "
                        "or .npz) instead of the run's test split; writes eval_<name>.json")
    p.add_argument("--limit", type=int, metavar="N", help="evaluate a seeded sample of N images")
    p.add_argument("--jpeg", metavar="Q[,Q...]",
                   help="also evaluate after re-encoding the images as JPEG at these qualities "
                        "(e.g. 95,75,50), float and int8; adds `robustness` to the eval json")
    p.add_argument("--resize", type=float, metavar="S",
                   help="with --jpeg: also downscale by S (e.g. 0.5) and upscale back before encoding")
    p.add_argument("--no-plots", action="store_true", help="do not write the PNG plots")


def run(args) -> int:
    from tinyfake.export.evaluate import evaluate_run, summary_table
    from tinyfake.export.pipeline import find_run

    from tinyfake.errors import UserError
    from tinyfake.export.robustness import (add_robustness, conditions, parse_qualities,
                                           robustness_table)

    if args.resize is not None and not args.jpeg:
        raise UserError("--resize goes with --jpeg (e.g. --jpeg 95,75,50 --resize 0.5)")
    qualities = parse_qualities(args.jpeg) if args.jpeg else None
    if qualities:
        conditions(qualities, args.resize)  # checks --resize before the long work
    run_dir = find_run(args.run_dir)
    result = evaluate_run(run_dir, data=args.data, limit=args.limit)
    print(summary_table(result))
    if qualities:
        add_robustness(result, run_dir, qualities, args.resize, data=args.data, limit=args.limit)
        print(robustness_table(result["robustness"]))
    print(f"  wrote {result['path']}")
    if not args.no_plots:
        from tinyfake.report.plots import write_run_plots
        for png in write_run_plots(run_dir):
            print(f"  wrote {png}")
    return 0
