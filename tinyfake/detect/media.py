"""Finding media files, reading videos frame by frame, and finding every face.

Video reading and frame sampling live in `tinyfake.data.layouts.video`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyfake.data import faces
from tinyfake.data.loaders import IMAGE_EXTS
from tinyfake.data.layouts.video import (DEFAULT_FRAMES, VIDEO_EXTS, VideoInfo, read_sampled,  # noqa: F401
                                         sample_indices, video_info)
from tinyfake.errors import UserError


def media_kind(path: Path) -> str | None:
    ext = path.suffix.lower()
    return "image" if ext in IMAGE_EXTS else "video" if ext in VIDEO_EXTS else None


def find_media(paths) -> list[tuple[Path, Path]]:
    """(file, root it was found under) for every image/video in `paths`
    (files, or folders searched recursively)."""
    found = []
    for p in map(Path, paths):
        if not p.exists():
            raise UserError(f"{p} does not exist; give an image, a video or a folder of them")
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and media_kind(f))
            if not files:
                raise UserError(f"no images or videos in {p} (looked for "
                                f"{', '.join(sorted(VIDEO_EXTS | IMAGE_EXTS))})")
            found += [(f, p) for f in files]
        else:
            found.append((p, p.parent))
    return found


def read_image(path: Path) -> np.ndarray:
    img = faces.read_rgb(path)
    if img is None:
        raise UserError(f"cannot read {path}: not an image OpenCV can decode (corrupt or unsupported format)")
    return img


DEFAULT_FINDER = "mtcnn"  # fewer missed faces and background boxes than Haar (tinyfake.data.faces)


def detect_faces(img: np.ndarray, finder: str = DEFAULT_FINDER,
                 min_fraction: float = 0.08) -> list[tuple[int, int, int, int]]:
    """Every face in a frame, largest first (see `tinyfake.data.faces.detect_faces`);
    a little smaller faces than a dataset crop allows, as video faces can be far."""
    return faces.detect_faces(img, min_fraction, finder)


def iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    inter = faces.box_overlap(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def face_crop(img: np.ndarray, box, size: int, margin: float = 0.25) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The model's input for one face: the square around `box` grown by
    `margin` (as training's `crop_face` does), resized to size x size."""
    left, top, side = faces.square_crop_box(box, img.shape, margin)
    return faces.resize(img[top:top + side, left:left + side], size), (left, top, side)
