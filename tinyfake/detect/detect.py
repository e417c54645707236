"""Detect, track, score and aggregate the faces of one image or video."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tinyfake.detect import annotate as ann
from tinyfake.detect.media import (DEFAULT_FINDER, detect_faces, face_crop, media_kind, read_image,
                                   read_sampled, sample_indices, video_info)
from tinyfake.detect.scoring import Scorer
from tinyfake.detect.tracking import DEFAULT_THRESHOLD, DEFAULT_TOP_K, Tracker, aggregate, label

RULE = ("face score = P(fake) of the int8 model; track score = mean of its face scores; "
        "file score = mean of the top-k face scores; fake when score >= threshold")


def _frame_record(scorer: Scorer, tracker: Tracker, index: int, rgb: np.ndarray, fps: float,
                  threshold: float, finder: str) -> dict:
    boxes = detect_faces(rgb, finder)
    ids = tracker.update(boxes)
    faces = []
    if boxes:
        crops, squares = zip(*(face_crop(rgb, b, scorer.size) for b in boxes))
        raw = scorer.outputs(scorer.quantize(np.stack(crops)))
        for box, tid, sq, r, s in zip(boxes, ids, squares, raw, scorer.scores(raw)):
            faces.append({"box": list(box), "crop": list(sq), "track": int(tid), "raw": r.tolist(),
                          "score": float(s), "label": label(float(s), threshold)})
    return {"index": index, "time_s": round(index / fps, 4) if fps > 0 else None, "faces": faces}


def detect_file(path: Path, scorer: Scorer, *, every: int | None = None, frames: int | None = None,
                top_k: int = DEFAULT_TOP_K, threshold: float = DEFAULT_THRESHOLD,
                annotate_to: Path | None = None, progress: bool | None = None,
                finder: str = DEFAULT_FINDER) -> dict:
    """The report for one image or video (see tinyfake.detect.tracking for the rule).

    `annotate_to`: a path without suffix; the annotated image gets `.png`,
    the video `.mp4` (sampled frames only, at the source fps / sampling step)."""
    kind = media_kind(path)
    tracker = Tracker()
    report = {"file": str(path), "kind": kind, "run": str(scorer.run.root), "backend": scorer.backend,
              "engine": scorer.describe, "model_hash": scorer.model_hash, "input_size": scorer.size,
              "face_finder": finder, "rule": RULE}
    annotated = None
    if kind == "image":
        rgb = read_image(path)
        records = [_frame_record(scorer, tracker, 0, rgb, 0.0, threshold, finder)]
        report["media"] = {"width": rgb.shape[1], "height": rgb.shape[0]}
        tracks, overall = aggregate(records, top_k, threshold)
        if annotate_to is not None:
            annotated = annotate_to.with_suffix(".png")
            banner = overall["label"].upper() + (f" {overall['score']:.2f}" if overall["score"] is not None else "")
            ann.write_image(annotated, ann.draw(rgb, records[0]["faces"], banner))
    else:
        info = video_info(path)
        indices = sample_indices(info.frame_count, every, frames)
        report["media"] = {"width": info.width, "height": info.height, "fps": info.fps,
                           "frame_count": info.frame_count,
                           "sampling": f"every {every} frame(s)" if every else f"{len(indices)} evenly spaced frames"}
        out = None
        if annotate_to is not None:
            annotated = annotate_to.with_suffix(ann.VIDEO_EXT)
            step = info.frame_count / max(1, len(indices))
            out = ann.VideoOut(annotated, info.fps / step if info.fps > 0 else 10.0)
        records = []
        try:
            for i, rgb in tqdm(read_sampled(path, indices), total=len(indices), desc=path.name,
                               unit="frame", leave=False, disable=None if progress is None else not progress):
                rec = _frame_record(scorer, tracker, i, rgb, info.fps, threshold, finder)
                records.append(rec)
                if out is not None:
                    out.write(ann.draw(rgb, rec["faces"]))
        finally:
            if out is not None:
                out.close()
        if not records:
            from tinyfake.errors import UserError
            raise UserError(f"cannot read {path}: no frame could be decoded")
        tracks, overall = aggregate(records, top_k, threshold)
    report.update(frames=records, tracks=tracks, overall=overall,
                  annotated=str(annotated) if annotated else None)
    if overall["faces"] == 0:
        report["message"] = f"no face found in {len(records)} sampled frame(s)"
    return report


def write_report(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
