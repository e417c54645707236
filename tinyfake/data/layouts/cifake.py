"""CIFAKE (Bird & Lotfi 2024): 32x32 CIFAR-10 photos (REAL) and Stable
Diffusion 1.4 look-alikes (FAKE), with its own split:

    train/REAL/*.jpg  train/FAKE/*.jpg  test/REAL/*.jpg  test/FAKE/*.jpg

Point the loader at `cifake/train` to train (split into train/val by
image) and at `cifake/test` to evaluate (`tinyfake eval --data cifake/test`),
which keeps CIFAKE's split; the root loads both with category = the part.
Every image is its own group (no identities); images are not faces, so no
face detection.
"""
from __future__ import annotations

from pathlib import Path

from tinyfake.data.layouts.common import Item, files
from tinyfake.data.loaders import IMAGE_EXTS

PARTS = ("train", "test")


def _is_part(d: Path) -> bool:
    return (d / "REAL").is_dir() and (d / "FAKE").is_dir()


def detect(root: Path) -> bool:
    return _is_part(root) or any(_is_part(root / p) for p in PARTS)


def find(root: Path) -> list[Item]:
    parts = [root] if _is_part(root) else [root / p for p in PARTS if _is_part(root / p)]
    items = []
    for d in parts:
        for label, cls in ((0, "REAL"), (1, "FAKE")):
            for f in files(d / cls, IMAGE_EXTS):
                rel = f.relative_to(root).as_posix()
                items.append(Item(f, label, "cifake:" + rel, d.name))
    return items
