"""Image reading, square resizing and face detection + cropping.

Two face finders, both shipping their weights in their wheels (nothing is
downloaded): MTCNN (the `mtcnn` wheel, on the TensorFlow tinyfake already
pins), which `tinyfake detect` uses, and OpenCV's frontal-face Haar cascades
(`cv2.data.haarcascades`), which crop training photos (`--detect-faces`) as
they always have, so that a run's faces stay what it was trained on. On the
48 rff photos (one person each) MTCNN returns exactly that face in 47 and
nothing in 1; the cascades return nothing in 4, a second box (ear, chin,
background) in 3, and a largest box that is not the face in 2
(scripts/bench_faces.py, bench/results/faces.json).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import cv2
import numpy as np

from tinyfake.errors import UserError

DETECT_MAX_SIDE = 640  # frames are shrunk to this for detection: speed, same boxes
FINDERS = ("mtcnn", "haar")
# Below it, MTCNN's boxes on those photos were ears, hands and background.
MTCNN_MIN_CONFIDENCE = 0.9


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


def _haar_boxes(img: np.ndarray, min_side: int) -> list:
    """The first of ATTEMPTS' cascades that finds a face: its boxes."""
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    equalized = cv2.equalizeHist(grey)
    for name, equalize, neighbours in ATTEMPTS:
        boxes = _cascade(name).detectMultiScale(equalized if equalize else grey, scaleFactor=1.1,
                                                minNeighbors=neighbours, minSize=(min_side, min_side))
        if len(boxes):
            return list(boxes)
    return []


@functools.lru_cache(maxsize=1)
def _mtcnn():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter
    try:
        from mtcnn import MTCNN
    except ImportError:
        raise UserError("the MTCNN face finder is not installed (the `mtcnn` package): run "
                        "scripts/setup.sh, or use --face-finder haar") from None
    return MTCNN(device="CPU:0")


def _mtcnn_boxes(img: np.ndarray, min_side: int) -> list:
    def confident(image):  # (mtcnn 1.0.0's own min_face_size misses faces far above it: filter here)
        return [r["box"] for r in _mtcnn().detect_faces(image)
                if r["confidence"] >= MTCNN_MIN_CONFIDENCE and max(r["box"][2:]) >= min_side]
    boxes = confident(img)
    if boxes:
        return boxes
    # A face that fills the frame is too big for MTCNN's coarsest scale: look
    # again with a border around the image, and map the boxes back into it.
    pad = max(img.shape[:2]) // 4
    h, w = img.shape[:2]
    out = []
    for x, y, bw, bh in confident(cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT)):
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(w, x - pad + bw), min(h, y - pad + bh)
        if x1 > x0 and y1 > y0:
            out.append((x0, y0, x1 - x0, y1 - y0))
    return out


def detect_faces(img: np.ndarray, min_fraction: float = 0.1,
                 finder: str = "haar") -> list[tuple[int, int, int, int]]:
    """Every face in an RGB image as (x, y, w, h), largest first.

    `finder`: "haar" (the cascades in ATTEMPTS, tried in order until one
    finds a face) or "mtcnn". The smallest face is `min_fraction` of the
    shorter side (20 px at least); boxes mostly inside a larger one are dropped.
    """
    if finder not in FINDERS:
        raise UserError(f"unknown face finder {finder!r}; choose one of {', '.join(FINDERS)}")
    h, w = img.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = img if scale == 1.0 else cv2.resize(img, (round(w * scale), round(h * scale)),
                                                interpolation=cv2.INTER_AREA)
    min_side = max(20, int(min_fraction * min(small.shape[:2])))
    found = (_mtcnn_boxes if finder == "mtcnn" else _haar_boxes)(small, min_side)
    boxes = sorted((tuple(int(round(v / scale)) for v in b) for b in found), key=lambda b: -b[2] * b[3])
    kept: list[tuple[int, int, int, int]] = []
    for b in boxes:
        if all(box_overlap(b, k) < 0.5 * b[2] * b[3] for k in kept):
            kept.append(b)
    return kept


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
