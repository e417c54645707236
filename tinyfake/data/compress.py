"""What social networks do to a face: JPEG re-compression and down/up-scaling.

uint8 NHWC in, uint8 NHWC out (same shape), with OpenCV. Used by SimCLR's
view augmentation and by the compression-robustness evaluation.
"""
from __future__ import annotations

import cv2
import numpy as np


def jpeg_recompress(x: np.ndarray, quality: int) -> np.ndarray:
    """Encode every RGB image as JPEG at `quality` (1-100) and decode it again."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be 1..100, got {quality}")
    out = np.empty_like(x)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    for i, img in enumerate(x):
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), params)  # RGB -> BGR
        if not ok:
            raise RuntimeError("OpenCV could not JPEG-encode an image")
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return out


def resize_roundtrip(x: np.ndarray, scale: float) -> np.ndarray:
    """Downscale by `scale` (area) and upscale back (bilinear), like a platform's resize."""
    if not 0 < scale <= 1:
        raise ValueError(f"resize scale must be in (0, 1], got {scale}")
    n, h, w, _ = x.shape
    small = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = np.empty_like(x)
    for i, img in enumerate(x):
        down = cv2.resize(img, small, interpolation=cv2.INTER_AREA)
        out[i] = cv2.resize(down, (w, h), interpolation=cv2.INTER_LINEAR)
    return out
