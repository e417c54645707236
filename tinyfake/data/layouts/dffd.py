"""DFFD, the Diverse Fake Face Dataset (Dang et al. 2020). Assumed layout,
one folder per source, each with the release's own split folders:

    <source>/<train|validation|test>/**/*.{png,jpg}

Real sources: ffhq, celeba, youtube (FF++ originals). Fake sources:
faceapp, stargan, pggan_v1, pggan_v2, stylegan_celeba, stylegan_ffhq,
deepfakes, face2face, faceswap (FF++ methods). Category = source.
Group: frames of an FF++ video sit in a folder named by its id (`000` or
`000_003`): the ids join as in FaceForensics++; other images group by file
stem, which keeps a StarGAN/FaceApp edit with its CelebA/FFHQ original.
Folder names are matched case-insensitively.
"""
from __future__ import annotations

import re
from pathlib import Path

from tinyfake.data.layouts.common import Groups, Item, files
from tinyfake.data.loaders import IMAGE_EXTS

REAL = {"ffhq", "celeba", "youtube", "original"}
FAKE = {"faceapp", "stargan", "pggan_v1", "pggan_v2", "stylegan_celeba", "stylegan_ffhq",
        "deepfakes", "face2face", "faceswap"}


def _sources(root: Path) -> list[Path]:
    return sorted(d for d in root.iterdir() if d.is_dir() and d.name.lower() in REAL | FAKE)


def detect(root: Path) -> bool:
    return len(_sources(root)) >= 2


def find(root: Path) -> list[Item]:
    groups, found = Groups(), []
    for src in _sources(root):
        label = int(src.name.lower() in FAKE)
        for f in files(src, IMAGE_EXTS):
            video = next((p for p in f.relative_to(src).parts[:-1] if re.fullmatch(r"\d{3}(_\d{3})?", p)), None)
            ids = video.split("_") if video else [f"{f.stem}"]
            groups.union(*ids)
            found.append((f, label, src.name.lower(), ids))
    return [Item(f, label, "dffd:" + groups.find(ids[0]), cat) for f, label, cat, ids in found]
