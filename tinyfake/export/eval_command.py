"""`tinyfake eval`: float vs int8 TFLite vs TFLite Micro on the same images."""
from __future__ import annotations

import argparse

HELP = ("evaluate an exported run three ways (float PyTorch, int8 TFLite reference kernels, "
        "TFLite Micro) and write eval.json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR",
                   help="run directory (default: the most recently trained under runs/)")
    p.add_argument("--data", metavar="PATH",
                   help="evaluate on every image of this dataset (folder with real/ and fake/, "
                        "or .npz) instead of the run's test split; writes eval_<name>.json")
    p.add_argument("--limit", type=int, metavar="N", help="evaluate a seeded sample of N images")


def run(args) -> int:
    from tinyfake.export.evaluate import evaluate_run, summary_table
    from tinyfake.export.pipeline import find_run

    result = evaluate_run(find_run(args.run_dir), data=args.data, limit=args.limit)
    print(summary_table(result))
    print(f"  wrote {result['path']}")
    return 0
