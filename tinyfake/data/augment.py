"""Training augmentations on uint8 NHWC batches (numpy; deterministic per rng).

Kept mild on purpose: blending artefacts are subtle, and strong blur or noise
would erase the very signal a deepfake detector learns.
"""
from __future__ import annotations

import numpy as np

from tinyfake.errors import UserError


def augment_batch(x: np.ndarray, rng: np.random.Generator, *, flip=True,
                  max_shift: float = 0.06, brightness: float = 0.1,
                  contrast: float = 0.1, saturation: float = 0.1) -> np.ndarray:
    """Random horizontal flip, shift (reflect-padded crop) and colour jitter."""
    n, h, w, _ = x.shape
    out = x.copy()
    if flip:
        flips = rng.random(n) < 0.5
        out[flips] = out[flips, :, ::-1]
    if max_shift > 0:
        p = max(1, int(round(max_shift * h)))
        padded = np.pad(out, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
        dy, dx = rng.integers(0, 2 * p + 1, (2, n))
        for i in range(n):
            out[i] = padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    f = out.astype(np.float32)
    shape = (n, 1, 1, 1)
    mean = f.mean(axis=(1, 2, 3), keepdims=True)
    f = (f - mean) * rng.uniform(1 - contrast, 1 + contrast, shape).astype(np.float32) + mean
    f = f * rng.uniform(1 - brightness, 1 + brightness, shape).astype(np.float32)
    grey = f.mean(axis=3, keepdims=True)
    f = grey + (f - grey) * rng.uniform(1 - saturation, 1 + saturation, shape).astype(np.float32)
    return np.clip(np.round(f), 0, 255).astype(np.uint8)


# Training augmentation policies (`tinyfake train --augment`).
POLICIES = ("none", "mild", "jpeg", "strong")


def policy_name(augment) -> str:
    """A run config's `augment` value (a policy name, or a bool in older runs)."""
    name = ("mild" if augment else "none") if isinstance(augment, bool) else augment
    if name not in POLICIES:
        raise UserError(f"unknown augmentation policy {augment!r}; choose one of: {', '.join(POLICIES)}")
    return name


def augment_policy(x: np.ndarray, rng: np.random.Generator, policy: str) -> np.ndarray:
    """none: x as is; mild: `augment_batch`; jpeg: mild, then half the images
    JPEG re-encoded (quality 30-95: what platforms do to a face); strong: as
    jpeg, plus with some probability a Gaussian blur and a cut-out square
    filled with the image mean (so the model cannot lean on one region)."""
    if policy == "none":
        return x
    out = augment_batch(x, rng)
    if policy == "mild":
        return out
    import cv2

    from tinyfake.data.compress import jpeg_recompress

    n, h, w, _ = out.shape
    for i in range(n):
        if rng.random() < 0.5:
            out[i] = jpeg_recompress(out[i:i + 1], int(rng.integers(30, 96)))[0]
        if policy == "jpeg":
            continue
        if rng.random() < 0.25:
            sigma = float(rng.uniform(0.3, 1.2))
            out[i] = cv2.GaussianBlur(out[i], (0, 0), sigmaX=sigma)
        if rng.random() < 0.5:
            s = max(1, int(round(h * rng.uniform(0.1, 0.3))))
            top, left = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
            out[i, top:top + s, left:left + s] = out[i].mean(axis=(0, 1)).round().astype(np.uint8)
    return out
