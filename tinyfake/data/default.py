"""The embedded demo set: LFW faces as real, self-blended images as fake.

Real: the 100 face images of `skimage.data.lfw_subset()` (greyscale 25x25,
replicated to RGB, resized to `size`). Fake: self-blended images (SBI, Shiohara
& Yamasaki 2022): a face is blended with a perturbed copy of itself inside a
soft facial-region mask, which leaves the boundary and statistics artefacts
that face swaps leave, without any second identity. A fake keeps its source
face's group, so a split never puts a face and its fake on different sides.
Built in memory, deterministically from `seed`; nothing is cached on disk.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from tinyfake.data.dataset import FaceDataset
from tinyfake.data.faces import resize

NUM_FACES = 100  # lfw_subset(): the first 100 of its 200 images are faces


def lfw_faces(size: int) -> np.ndarray:
    """The LFW subset faces as uint8 (100, size, size, 3)."""
    from skimage.data import lfw_subset

    grey = np.round(lfw_subset()[:NUM_FACES] * 255).astype(np.uint8)
    return np.stack([np.repeat(resize(g, size)[..., None], 3, axis=2) for g in grey])


def face_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """A soft elliptical face-region mask (size, size) in [0, 1]."""
    mask = np.zeros((size, size), np.float32)
    centre = (size * (0.5 + rng.uniform(-0.04, 0.04)), size * (0.52 + rng.uniform(-0.04, 0.04)))
    axes = (size * rng.uniform(0.26, 0.38), size * rng.uniform(0.32, 0.44))
    # cv2.ellipse takes integer pixels: draw at 16x sub-pixel precision via `shift`.
    cv2.ellipse(mask, (round(centre[0] * 16), round(centre[1] * 16)),
                (round(axes[0] * 16), round(axes[1] * 16)), rng.uniform(-15, 15),
                0, 360, 1.0, -1, cv2.LINE_AA, shift=4)
    sigma = size * rng.uniform(0.03, 0.09)
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def perturb(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A slightly changed copy of a float32 face: tone, geometry and sharpness.

    Tone changes are the same on all channels: the real faces are grey, so a
    colour tint would be a trivial cue rather than a blending artefact.
    """
    size = face.shape[0]
    gain, bias, gamma = rng.uniform(0.85, 1.15), rng.uniform(-0.08, 0.08), rng.uniform(0.8, 1.25)
    out = np.clip(np.clip(face, 0, 1) ** gamma * gain + bias, 0, 1)
    scale = rng.uniform(0.95, 1.06)
    shift = rng.uniform(-0.03, 0.03, 2) * size
    m = cv2.getRotationMatrix2D((size / 2, size / 2), 0.0, scale)
    m[:, 2] += shift
    out = cv2.warpAffine(out, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    blurred = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.6, 1.4))
    if rng.random() < 0.5:
        out = blurred
    else:  # unsharp mask
        out = np.clip(out + rng.uniform(0.5, 1.5) * (out - blurred), 0, 1)
    return out


def self_blend(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One self-blended fake from a uint8 (H,W,3) face."""
    f = face.astype(np.float32) / 255
    mask = face_mask(face.shape[0], rng) * rng.choice([0.5, 0.75, 1.0, 1.0])
    fake = mask[..., None] * perturb(f, rng) + (1 - mask[..., None]) * f
    return np.clip(np.round(fake * 255), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _build(size: int, seed: int, fakes_per_face: int) -> FaceDataset:
    real = lfw_faces(size)
    rng = np.random.default_rng(seed)
    xs, ys, groups, names = [], [], [], []
    for i, face in enumerate(real):
        g = f"lfw{i:03d}"
        xs.append(face), ys.append(0), groups.append(g), names.append(f"default/real/{g}")
        for k in range(fakes_per_face):
            xs.append(self_blend(face, rng)), ys.append(1), groups.append(g)
            names.append(f"default/fake/{g}_sbi{k}")
    return FaceDataset(np.stack(xs), np.array(ys), np.array(groups), np.array(names),
                       source="default")


def default_dataset(size: int, seed: int = 0, fakes_per_face: int = 1) -> FaceDataset:
    """100 real LFW faces and `fakes_per_face` self-blended fakes of each."""
    ds = _build(int(size), int(seed), int(fakes_per_face))
    # copies: callers may modify their dataset in place without touching the cache
    return FaceDataset(ds.x.copy(), ds.y.copy(), ds.group.copy(), ds.name.copy(), ds.source)
