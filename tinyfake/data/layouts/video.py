"""Reading videos: frame counts, frame sampling, sequential decoding.

Frames are sampled either every k-th frame (`every`) or as N evenly spaced
frames (`frames`). Videos are decoded sequentially (`grab` skips frames
without converting them), which is exact for every codec, unlike seeking.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from tinyfake.errors import UserError

VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
DEFAULT_FRAMES = 32


@dataclass
class VideoInfo:
    fps: float
    frame_count: int   # as the container reports it (may be an estimate)
    width: int
    height: int


@contextmanager
def _quiet_stderr():
    """Silence what FFmpeg prints straight to fd 2 (e.g. "moov atom not found"):
    an unreadable file gets one error line from tinyfake instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def video_info(path: Path) -> VideoInfo:
    with _quiet_stderr():
        cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise UserError(f"cannot read {path}: not a video OpenCV can decode (corrupt or unsupported codec)")
        info = VideoInfo(float(cap.get(cv2.CAP_PROP_FPS) or 0.0), int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
                         int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()
    if info.frame_count <= 0:  # some containers do not say: count by decoding
        info.frame_count = sum(1 for _ in _frames(path, lambda i: False))
    if info.frame_count <= 0:
        raise UserError(f"cannot read {path}: the video has no decodable frames")
    return info


def sample_indices(count: int, every: int | None = None, frames: int | None = None) -> list[int]:
    """Frame indices to look at: every `every`-th frame from 0, or `frames`
    evenly spaced ones (all of them when the video is shorter)."""
    if every is not None:
        if every < 1:
            raise UserError(f"--every must be at least 1, got {every}")
        return list(range(0, count, every))
    n = DEFAULT_FRAMES if frames is None else frames
    if n < 1:
        raise UserError(f"--frames must be at least 1, got {n}")
    if n >= count:
        return list(range(count))
    return sorted({int(round(v)) for v in np.linspace(0, count - 1, n)})


def _frames(path: Path, wanted) -> Iterator[tuple[int, np.ndarray | None]]:
    """(index, RGB frame or None when not wanted) for each frame in order."""
    cap = cv2.VideoCapture(str(path))
    try:
        i = 0
        while cap.grab():
            if wanted(i):
                ok, bgr = cap.retrieve()
                yield i, (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok and bgr is not None else None)
            else:
                yield i, None
            i += 1
    finally:
        cap.release()


def read_sampled(path: Path, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
    """The frames at `indices` as RGB, in order; stops early at the real end."""
    wanted = set(indices)
    last = max(indices) if indices else -1
    for i, rgb in _frames(path, wanted.__contains__):
        if rgb is not None:
            yield i, rgb
        if i >= last:
            break
