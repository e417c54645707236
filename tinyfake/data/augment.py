"""Training augmentations on uint8 NHWC batches (numpy; deterministic per rng).

Kept mild on purpose: blending artefacts are subtle, and strong blur or noise
would erase the very signal a deepfake detector learns.
"""
from __future__ import annotations

import numpy as np


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
