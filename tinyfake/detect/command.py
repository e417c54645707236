"""`tinyfake detect`: real-or-fake verdicts for images, videos and folders of them."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinyfake.detect.tracking import DEFAULT_THRESHOLD, DEFAULT_TOP_K
from tinyfake.firmware.boards import DEFAULT_BOARD

HELP = ("find and track every face in images or videos, score each with the run's int8 model "
        "(host C, TFLite Micro, a board or the simulator) and give a verdict per file")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tinyfake.detect.media import DEFAULT_FRAMES
    from tinyfake.detect.scoring import BACKENDS

    p.add_argument("inputs", nargs="+", metavar="PATH", help="image, video or folder (searched recursively)")
    p.add_argument("--run", help="run directory with model_int8.tflite (default: the only exported run under runs/)")
    s = p.add_mutually_exclusive_group()
    s.add_argument("--every", type=int, metavar="K", help="look at every K-th frame of a video")
    s.add_argument("--frames", type=int, metavar="N",
                   help=f"look at N evenly spaced frames per video (default {DEFAULT_FRAMES})")
    p.add_argument("--backend", choices=BACKENDS, default="host",
                   help="host: tinyfake's compiled C built for this machine (default); tflite: the "
                        "TFLite Micro interpreter; simulate: the run's firmware in QEMU")
    p.add_argument("--simulate", dest="backend", action="store_const", const="simulate",
                   help="same as --backend simulate")
    p.add_argument("--port", help="score on a board at this serial port (flashed with the run's firmware)")
    p.add_argument("--board", default=DEFAULT_BOARD, help=f"board for --port/--simulate (default {DEFAULT_BOARD})")
    p.add_argument("--face-finder", choices=("mtcnn", "haar"), default="mtcnn",
                   help="mtcnn (default: fewer missed faces and background boxes) or haar (OpenCV's "
                        "cascades, faster)")
    p.add_argument("--annotate", action="store_true",
                   help="also write the image/video with green (real) and red (fake) boxes and scores")
    p.add_argument("--out", type=Path, help="where reports go (default: <run>/detect/)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"fake when the score is >= this (default {DEFAULT_THRESHOLD})")
    p.add_argument("--top-k", type=int, default=DEFAULT_TOP_K,
                   help=f"file score = mean of the K highest face scores (default {DEFAULT_TOP_K})")


def _stem(path: Path, root: Path, used: set[str]) -> str:
    rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
    stem = "__".join(rel.with_suffix("").parts) or path.stem
    if stem in used:
        stem = f"{stem}_{path.suffix.lstrip('.')}"
    used.add(stem)
    return stem


def run(args) -> int:
    from tinyfake.detect.detect import detect_file, write_report
    from tinyfake.detect.media import find_media
    from tinyfake.detect.scoring import find_run, open_scorer
    from tinyfake.errors import UserError

    if args.top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {args.top_k}")
    if not 0.0 <= args.threshold <= 1.0:
        raise UserError(f"--threshold must be in [0, 1], got {args.threshold}")
    if args.port is not None and args.backend == "simulate":
        raise UserError("give either --port PORT (a board) or --simulate, not both")
    files = find_media(args.inputs)
    run_dir = find_run(args.run)
    out = args.out or run_dir.root / "detect"
    out.mkdir(parents=True, exist_ok=True)
    summary, failed, used = [], [], set()
    with open_scorer(run_dir, args.backend, port=args.port, board=args.board) as scorer:
        print(f"scoring faces with {run_dir.root} on {scorer.describe}")
        for path, root in files:
            stem = _stem(path, root, used)
            try:
                report = detect_file(path, scorer, every=args.every, frames=args.frames, top_k=args.top_k,
                                     threshold=args.threshold, finder=args.face_finder,
                                     annotate_to=out / f"{stem}.annotated" if args.annotate else None)
            except UserError as exc:
                if len(files) == 1:
                    raise
                print(f"  {path}: skipped: {exc}")
                failed.append({"file": str(path), "error": str(exc)})
                continue
            write_report(report, out / f"{stem}.json")
            o = report["overall"]
            verdict = "no face found" if o["score"] is None else f"{o['label'].upper()} {o['score']:.3f}"
            print(f"  {path}: {verdict} ({o['faces']} face(s), {o['tracks']} track(s), "
                  f"{o['frames']} frame(s)) -> {out / (stem + '.json')}")
            summary.append({"file": str(path), "report": str(out / f"{stem}.json"), **o,
                            "annotated": report["annotated"]})
    (out / "summary.json").write_text(json.dumps({"files": summary, "failed": failed}, indent=1) + "\n")
    if failed:
        print(f"{len(failed)} of {len(files)} file(s) could not be read; see {out / 'summary.json'}")
    return 1 if failed else 0
