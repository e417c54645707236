"""What every layout shares: an `Item` per file (label, group, category),
union-find groups, and turning items into face crops (images directly,
videos by frame sampling + face detection), with a per-video crop cache."""
from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tinyfake.data import faces
from tinyfake.data.dataset import FaceDataset
from tinyfake.data.layouts.video import read_sampled, sample_indices, video_info
from tinyfake.errors import UserError
from tinyfake.paths import CACHE_ROOT

log = logging.getLogger(__name__)

FRAMES_PER_VIDEO = 8   # evenly spaced frames sampled from each video
CACHE = CACHE_ROOT / "video-faces"         # one npz per video
IMAGE_CACHE = CACHE_ROOT / "image-faces"   # one npz per (image list, size, crop)


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
    x, index = video_face_crops(path, size, frames)
    _save_atomic(cached, x=x, index=np.array(index, np.int64))
    return x, index


def video_face_crops(path: Path, size: int, frames: int) -> tuple[np.ndarray, list[int]]:
    """(crops, frame indices) of the largest face in `frames` evenly spaced frames, uncached."""
    info = video_info(path)
    crops, index = [], []
    for i, rgb in read_sampled(path, sample_indices(info.frame_count, frames=frames)):
        crop = faces.crop_face(rgb, size)
        if crop is not None:
            crops.append(crop)
            index.append(i)
    x = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
    return x, index


def _save_atomic(path: Path, **arrays) -> None:
    """np.savez to a temporary name, then rename: a killed run leaves no half-written cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def _decode_image(path: Path, size: int, detect_faces: bool) -> np.ndarray | None:
    img = faces.read_rgb(path)
    if img is None:
        return None
    crop = faces.crop_face(img, size) if detect_faces else None
    return crop if crop is not None else faces.resize(faces.center_square(img), size)


def _image_faces(paths: list[Path], size: int, detect_faces: bool) -> tuple[np.ndarray, np.ndarray]:
    """(crops uint8 (N,size,size,3), readable (N,) bool) of image files, decoded
    in threads (OpenCV releases the GIL) and cached: the key covers every
    file's path, byte size and modification time, the size and the crop mode,
    so changing, adding or removing any file, or another size or crop, decodes
    afresh."""
    if not paths:  # a tree of videos only
        return np.zeros((0, size, size, 3), np.uint8), np.zeros(0, bool)
    key = hashlib.sha1(f"v1|{size}|{int(detect_faces)}".encode())
    for p in paths:
        st = p.stat()
        key.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    cached = IMAGE_CACHE / f"{key.hexdigest()}.npz"
    if cached.exists():
        with np.load(cached) as f:
            return f["x"], f["ok"]
    x = np.zeros((len(paths), size, size, 3), np.uint8)
    ok = np.zeros(len(paths), bool)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        crops = pool.map(lambda p: _decode_image(p, size, detect_faces), paths)
        for i, crop in enumerate(tqdm(crops, total=len(paths), desc="decoding images", unit="img",
                                      leave=False, disable=None)):
            if crop is not None:
                x[i], ok[i] = crop, True
    _save_atomic(cached, x=x, ok=ok)
    return x, ok


def build_dataset(items: list[Item], root: Path, size: int, layout: str, *, frames_per_video=FRAMES_PER_VIDEO,
                  skip_corrupt=False, detect_faces=False) -> FaceDataset:
    """Face crops for every item: all sampled frames of a video share its label, group and category."""
    if not items:
        raise UserError(f"{root} looks like a {layout} tree but holds no usable images or videos")
    xs, ys, groups, names, cats = [], [], [], [], []
    corrupt, faceless = [], []
    still = [i for i, it in enumerate(items) if not it.video]
    decoded, readable = _image_faces([items[i].path for i in still], size, detect_faces)
    image_row = {i: r for r, i in enumerate(still)}
    for k, it in enumerate(tqdm(items, desc=f"{layout} faces", unit="file", leave=False,
                                disable=None if len(still) < len(items) else True)):
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
            if not readable[image_row[k]]:
                corrupt.append(rel)
                continue
            crops, frame_names = [decoded[image_row[k]]], [rel]
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
