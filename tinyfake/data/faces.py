"""Image reading, square resizing and face detection + cropping (OpenCV).

Faces are found with the frontal-face Haar cascade that ships inside the
opencv wheel (`cv2.data.haarcascades`), so nothing is downloaded.
"""
from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

DETECT_MAX_SIDE = 640  # frames are shrunk to this for detection: speed, same boxes


def read_rgb(path: str | Path) -> np.ndarray | None:
    """An image file as uint8 RGB (H,W,3), or None when it cannot be decoded."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)  # greyscale -> 3 channels, alpha dropped
    if img is None or img.size == 0:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def to_rgb(img: np.ndarray) -> np.ndarray:
    """uint8 (H,W), (H,W,1) or (H,W,3) -> (H,W,3)."""
    if img.ndim == 2:
        img = img[..., None]
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size with INTER_AREA (no-op when already there)."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def center_square(img: np.ndarray) -> np.ndarray:
    """The largest centred square, so resizing never distorts a face."""
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return img[top:top + s, left:left + s]


# Tried in order until one finds a face: the default cascade is the most
# precise, alt2 and the unequalized image recover tilted or unevenly lit faces.
ATTEMPTS = (("haarcascade_frontalface_default.xml", True, 4),
            ("haarcascade_frontalface_alt2.xml", True, 3),
            ("haarcascade_frontalface_default.xml", False, 3),
            ("haarcascade_frontalface_alt2.xml", False, 3))


@functools.lru_cache(maxsize=None)
def _cascade(name: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"cannot load the OpenCV face cascade {path}")
    return cascade


def detect_faces(img: np.ndarray, min_fraction: float = 0.1) -> list[tuple[int, int, int, int]]:
    """Every frontal face in an RGB image as (x, y, w, h), largest first.

    The cascades in ATTEMPTS are tried in order until one finds a face; the
    smallest face is `min_fraction` of the shorter side (20 px at least);
    boxes mostly inside a larger one are dropped.
    """
    h, w = img.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        grey = cv2.resize(grey, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    equalized = cv2.equalizeHist(grey)
    min_side = max(20, int(min_fraction * min(grey.shape)))
    for name, equalize, neighbours in ATTEMPTS:
        boxes = _cascade(name).detectMultiScale(equalized if equalize else grey, scaleFactor=1.1,
                                                minNeighbors=neighbours, minSize=(min_side, min_side))
        if len(boxes):
            boxes = sorted((tuple(int(round(v / scale)) for v in b) for b in boxes),
                           key=lambda b: -b[2] * b[3])
            kept: list[tuple[int, int, int, int]] = []
            for b in boxes:
                if all(box_overlap(b, k) < 0.5 * b[2] * b[3] for k in kept):
                    kept.append(b)
            return kept
    return []


def box_overlap(a, b) -> float:
    """Intersection area of two (x, y, w, h) boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return float(ix * iy)


def detect_face(img: np.ndarray) -> tuple[int, int, int, int] | None:
    """The largest frontal face in an RGB image as (x, y, w, h), or None."""
    found = detect_faces(img)
    return found[0] if found else None


def square_crop_box(box, shape, margin: float = 0.25) -> tuple[int, int, int]:
    """A square (left, top, side) around `box` grown by `margin` of its size
    on each side, shifted (and if needed shrunk) to lie inside the image."""
    h, w = shape[:2]
    x, y, bw, bh = box
    side = int(round(max(bw, bh) * (1 + 2 * margin)))
    side = max(1, min(side, h, w))
    cx, cy = x + bw / 2, y + bh / 2
    left = int(round(cx - side / 2))
    top = int(round(cy - side / 2))
    left = min(max(left, 0), w - side)
    top = min(max(top, 0), h - side)
    return left, top, side


def crop_face(img: np.ndarray, size: int, margin: float = 0.25) -> np.ndarray | None:
    """The largest face as a square size x size crop, or None when none is found."""
    box = detect_face(img)
    if box is None:
        return None
    left, top, side = square_crop_box(box, img.shape, margin)
    return resize(img[top:top + side, left:left + side], size)
