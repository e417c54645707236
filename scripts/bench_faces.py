#!/usr/bin/env python3
"""The face finders on the rff photos: each of ../shared/data/rff/frames'
48 photos shows one person, so a finder should return exactly one box.

For each finder (tinyfake.data.faces.FINDERS): photos with no face, exactly
one and more than one, seconds per photo, and every photo's boxes; for the
photos where both return boxes, the IoU of their largest boxes (a low IoU:
one of them boxed something else). Writes bench/results/faces.json.

    .venv/bin/python scripts/bench_faces.py
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
FRAMES = REPO.parent / "shared" / "data" / "rff" / "frames"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=Path, default=FRAMES)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "faces.json")
    args = ap.parse_args()
    photos = sorted(args.frames.rglob("*.jpg"))
    if not photos:
        print(f"no photos under {args.frames}: nothing to measure")
        return 0

    from tinyfake.data import faces
    from tinyfake.detect.media import iou

    images = {p: faces.read_rgb(p) for p in photos}
    result = {"photos": len(photos), "source": str(args.frames), "finders": {}}
    boxes = {}
    for finder in faces.FINDERS:
        faces.detect_faces(images[photos[0]], finder=finder)  # load the finder before timing
        t = time.perf_counter()
        boxes[finder] = {p: faces.detect_faces(img, finder=finder) for p, img in images.items()}
        seconds = (time.perf_counter() - t) / len(photos)
        counts = [len(b) for b in boxes[finder].values()]
        result["finders"][finder] = {
            "none": counts.count(0), "exactly_one": counts.count(1), "more_than_one": sum(c > 1 for c in counts),
            "seconds_per_photo": round(seconds, 3),
            "boxes": {p.name: [list(b) for b in bs] for p, bs in boxes[finder].items()}}
    a, b = faces.FINDERS
    both = [p for p in photos if boxes[a][p] and boxes[b][p]]
    ious = {p.name: round(iou(boxes[a][p][0], boxes[b][p][0]), 3) for p in both}
    result["largest_box_iou"] = {"finders": [a, b], "photos": len(both),
                                 "below_0.3": sorted(n for n, v in ious.items() if v < 0.3), "per_photo": ious}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for f, r in result["finders"].items():
        print(f"{f:6s} none {r['none']:2d}  exactly one {r['exactly_one']:2d}  more than one "
              f"{r['more_than_one']:2d}  ({r['seconds_per_photo']:.2f} s per photo)")
    print(f"largest boxes with IoU < 0.3 ({a} vs {b}): {', '.join(result['largest_box_iou']['below_0.3']) or 'none'}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
