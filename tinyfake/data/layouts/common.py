"""What every layout shares: an `Item` per file (label, group, category),
union-find groups, and turning items into face crops (images directly,
videos by frame sampling + face detection), with a per-video crop cache."""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tinyfake.data import faces
from tinyfake.data.dataset import FaceDataset
from tinyfake.data.layouts.video import read_sampled, sample_indices, video_info
from tinyfake.errors import UserError

log = logging.getLogger(__name__)

FRAMES_PER_VIDEO = 8   # evenly spaced frames sampled from each video
CACHE = Path(os.environ.get("TINYFAKE_CACHE", Path.home() / ".cache" / "tinyfake")) / "video-faces"


@dataclass
class Item:
    path: Path
    label: int          # 1 = fake
    group: str          # source identity / video: never on two sides of a split
    category: str = ""  # manipulation method, platform, generator ...
    video: bool = False


class Groups:
    """Union-find over identity/video ids: a fake made from a and b joins
    a's and b's groups, so every video showing either stays on one side."""

    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, a: str) -> str:
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, *ids: str) -> None:
        roots = sorted({self.find(i) for i in ids})
        for r in roots[1:]:
            self.parent[r] = roots[0]


def _video_faces(path: Path, size: int, frames: int) -> tuple[np.ndarray, list[int]]:
    """Largest-face crops of `frames` evenly spaced frames (frames without a face are skipped)."""
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_mtime_ns}|{st.st_size}|{size}|{frames}|v1".encode()).hexdigest()
    cached = CACHE / f"{key}.npz"
    if cached.exists():
        with np.load(cached) as f:
            return f["x"], f["index"].tolist()
    info = video_info(path)
    crops, index = [], []
    for i, rgb in read_sampled(path, sample_indices(info.frame_count, frames=frames)):
        crop = faces.crop_face(rgb, size)
        if crop is not None:
            crops.append(crop)
            index.append(i)
    x = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, x=x, index=np.array(index, np.int64))
    os.replace(tmp, cached)
    return x, index


def build_dataset(items: list[Item], root: Path, size: int, layout: str, *, frames_per_video=FRAMES_PER_VIDEO,
                  skip_corrupt=False, detect_faces=False) -> FaceDataset:
    """Face crops for every item: all sampled frames of a video share its label, group and category."""
    if not items:
        raise UserError(f"{root} looks like a {layout} tree but holds no usable images or videos")
    xs, ys, groups, names, cats = [], [], [], [], []
    corrupt, faceless = [], []
    for it in tqdm(items, desc=f"{layout} faces", unit="file", leave=False, disable=None):
        rel = it.path.relative_to(root).as_posix()
        if it.video:
            try:
                x, index = _video_faces(it.path, size, frames_per_video)
            except UserError:
                corrupt.append(rel)
                continue
            if not len(x):
                faceless.append(rel)
            crops, frame_names = list(x), [f"{rel}#{i}" for i in index]
        else:
            img = faces.read_rgb(it.path)
            if img is None:
                corrupt.append(rel)
                continue
            crop = faces.crop_face(img, size) if detect_faces else None
            crops = [crop if crop is not None else faces.resize(faces.center_square(img), size)]
            frame_names = [rel]
        for crop, nm in zip(crops, frame_names):
            xs.append(crop)
            ys.append(it.label)
            groups.append(it.group)
            names.append(nm)
            cats.append(it.category)
    if corrupt:
        if not skip_corrupt:
            raise UserError(f"{len(corrupt)} unreadable file(s) in {root}: {', '.join(corrupt[:3])}; "
                            "fix or delete them, or pass --skip-corrupt to ignore them")
        log.warning("tinyfake: skipped %d unreadable file(s) in %s", len(corrupt), root)
    if faceless:
        log.warning("tinyfake: no face in the sampled frames of %d video(s) of %s: %s",
                    len(faceless), root, ", ".join(faceless[:3]))
    x = np.stack(xs) if xs else np.zeros((0, size, size, 3), np.uint8)
    return FaceDataset(x, np.array(ys, np.uint8), np.array(groups, str), np.array(names, str),
                       source=str(root), category=np.array(cats, str))


def files(root: Path, exts) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts)
