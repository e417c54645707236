"""Face tracks across sampled frames, and the video-level verdict.

Tracking: greedy IoU matching. Each sampled frame's faces are matched to the
live tracks' last boxes, best IoU first, while IoU >= `min_iou`; a face left
over starts a new track; a track not seen for more than `max_missed` sampled
frames ends.

Aggregation (the documented rule, `aggregate`):
- face score: P(fake) of the int8 model on that face crop.
- track score: the mean of its face scores; the track is fake when its
  score >= threshold.
- video (or image) score: the mean of the `top_k` highest face scores over
  all frames and tracks (all faces when there are fewer than `top_k`).
  The file is FAKE when that score >= threshold (default 0.5), else REAL;
  with no face at all the verdict is "no face" and the score null.
  Top-k rather than the mean of everything: one manipulated person in a
  crowd, or a few manipulated frames, should flag the video; averaging k
  faces rather than taking the maximum damps a single-frame false alarm.
"""
from __future__ import annotations

import numpy as np

from tinyfake.detect.media import iou

DEFAULT_TOP_K = 5
DEFAULT_THRESHOLD = 0.5


class Tracker:
    def __init__(self, min_iou: float = 0.3, max_missed: int = 5):
        self.min_iou, self.max_missed = min_iou, max_missed
        self.live: dict[int, tuple[tuple, int]] = {}  # id -> (last box, sampled frames since seen)
        self.next_id = 0

    def update(self, boxes: list) -> list[int]:
        """Track ids for this frame's boxes (in the same order)."""
        pairs = sorted(((iou(box, last), tid, j) for tid, (last, _) in self.live.items()
                        for j, box in enumerate(boxes)), reverse=True)
        ids: list[int | None] = [None] * len(boxes)
        used = set()
        for score, tid, j in pairs:
            if score < self.min_iou:
                break
            if tid in used or ids[j] is not None:
                continue
            ids[j] = tid
            used.add(tid)
        for j in range(len(boxes)):
            if ids[j] is None:
                ids[j] = self.next_id
                self.next_id += 1
        seen = dict(zip(ids, boxes))
        self.live = {tid: (last, missed + 1) for tid, (last, missed) in self.live.items()
                     if tid not in seen and missed + 1 <= self.max_missed}
        self.live.update({tid: (box, 0) for tid, box in seen.items()})
        return ids


def label(score: float, threshold: float) -> str:
    return "fake" if score >= threshold else "real"


def aggregate(frames: list[dict], top_k: int = DEFAULT_TOP_K,
              threshold: float = DEFAULT_THRESHOLD) -> tuple[list[dict], dict]:
    """(per-track summaries, overall verdict) from per-frame face records
    (`{"index", "faces": [{"track", "score", ...}]}`); see the module docstring."""
    by_track: dict[int, list[tuple[int, float]]] = {}
    for fr in frames:
        for face in fr["faces"]:
            by_track.setdefault(face["track"], []).append((fr["index"], face["score"]))
    tracks = []
    for tid in sorted(by_track):
        idx, scores = zip(*by_track[tid])
        s = float(np.mean(scores))
        tracks.append({"track": tid, "faces": len(scores), "first_frame": min(idx), "last_frame": max(idx),
                       "score": s, "max_score": float(max(scores)), "label": label(s, threshold)})
    all_scores = sorted((f["score"] for fr in frames for f in fr["faces"]), reverse=True)
    overall = {"frames": len(frames), "frames_with_faces": sum(1 for fr in frames if fr["faces"]),
               "faces": len(all_scores), "tracks": len(tracks), "top_k": top_k, "threshold": threshold}
    if all_scores:
        s = float(np.mean(all_scores[:top_k]))
        overall.update(score=s, label=label(s, threshold))
    else:
        overall.update(score=None, label="no face")
    return tracks, overall
