"""Dataset loaders: `real/` + `fake/` image folders and npz arrays.

Folder layout (label from the top folder, group from the path below it):

    root/real/0001.jpg          group "0001" (the file stem)
    root/fake/0001.jpg          group "0001": a fake made from real/0001 shares it
    root/real/alice/frame3.png  group "alice" (the first sub-folder: one identity)

Files are searched recursively; only image extensions are read.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from tinyfake.data import faces
from tinyfake.data.dataset import CLASS_NAMES, FaceDataset
from tinyfake.errors import UserError

log = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
NPZ_HINT = "an npz needs `x` uint8 (N,H,W,3), `y` 0/1 (1 = fake), optional `group` and `name`"


def _listing(files: list[str], limit: int = 3) -> str:
    shown = ", ".join(files[:limit])
    return shown + (f" (+{len(files) - limit} more)" if len(files) > limit else "")


class _Preparer:
    """Turns decoded images into size x size faces; tracks images without a face."""

    def __init__(self, size: int, detect_faces: bool):
        self.size, self.detect_faces = size, detect_faces
        self.no_face: list[str] = []

    def __call__(self, img: np.ndarray, name: str) -> np.ndarray:
        img = faces.to_rgb(img)
        if self.detect_faces:
            crop = faces.crop_face(img, self.size)
            if crop is not None:
                return crop
            self.no_face.append(name)
        return faces.resize(faces.center_square(img), self.size)

    def report(self, where: str) -> None:
        if self.no_face:
            log.warning("tinyfake: no face found in %d image(s) of %s, used the centre square: %s",
                        len(self.no_face), where, _listing(self.no_face))


def load_folder(root: Path, size: int, *, skip_corrupt=False, detect_faces=False) -> FaceDataset:
    if not (root / "real").is_dir() and not (root / "fake").is_dir():
        raise UserError(f"{root} has no real/ or fake/ sub-folder; "
                        "put real faces in real/ and fake faces in fake/")
    prep = _Preparer(size, detect_faces)
    xs, ys, groups, names, corrupt = [], [], [], [], []
    for label, cls in enumerate(CLASS_NAMES):
        top = root / cls
        files = sorted(p for p in top.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file()) \
            if top.is_dir() else []
        for path in files:
            rel = path.relative_to(root).as_posix()
            img = faces.read_rgb(path)
            if img is None:
                corrupt.append(rel)
                continue
            parts = path.relative_to(top).parts
            xs.append(prep(img, rel))
            ys.append(label)
            groups.append(parts[0] if len(parts) > 1 else path.stem)
            names.append(rel)
    if corrupt:
        if not skip_corrupt:
            raise UserError(f"{len(corrupt)} unreadable image(s) in {root}: {_listing(corrupt)}; "
                            "fix or delete them, or pass --skip-corrupt to ignore them")
        log.warning("tinyfake: skipped %d unreadable image(s) in %s: %s",
                    len(corrupt), root, _listing(corrupt))
    prep.report(str(root))
    x = np.stack(xs) if xs else np.zeros((0, size, size, 3), np.uint8)
    return FaceDataset(x, np.array(ys, np.uint8), np.array(groups, str), np.array(names, str),
                       source=str(root))


def load_npz(path: Path, size: int, *, detect_faces=False) -> FaceDataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:  # zip, pickle or header errors all mean "not a usable npz"
        raise UserError(f"cannot read {path} as an npz file ({exc}); {NPZ_HINT}") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise UserError(f"{path} lacks key(s) {', '.join(missing)} (has {', '.join(arrays) or 'none'}); "
                        f"{NPZ_HINT}")
    x, y = arrays["x"], arrays["y"]
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3)):
        raise UserError(f"{path}: `x` is {x.dtype} {x.shape}, expected uint8 (N,H,W,3); {NPZ_HINT}")
    n = len(x)
    if n == 0:
        raise UserError(f"{path} holds no images (`x` has 0 rows); {NPZ_HINT}")
    if min(x.shape[1:3]) * 2 < size:
        raise UserError(f"{path}: faces are {x.shape[1]}x{x.shape[2]}, less than half of the input size "
                        f"{size}: upscaling them {size / min(x.shape[1:3]):.0f}x invents the detail a "
                        f"detector looks at; train at --size {min(x.shape[1:3]) * 2} or less, "
                        "or give larger faces")
    if y.ndim != 1 or len(y) != n or y.dtype.kind not in "iub":
        raise UserError(f"{path}: `y` is {y.dtype} {y.shape}, expected {n} integer labels; {NPZ_HINT}")
    if not np.isin(y, (0, 1)).all():
        raise UserError(f"{path}: `y` holds values other than 0 (real) and 1 (fake): "
                        f"{sorted(set(np.unique(y).tolist()) - {0, 1})[:5]}")
    extra = {}
    for key in ("group", "name"):
        if key in arrays:
            v = arrays[key]
            if v.shape != (n,) or v.dtype.kind not in "iuUS":
                raise UserError(f"{path}: `{key}` is {v.dtype} {v.shape}, expected {n} strings or integers")
            extra[key] = v.astype(str)
    name = extra.get("name", np.array([f"{path.name}[{i}]" for i in range(n)]))
    # Without groups every image is its own group: fine only if no two images share a source.
    group = extra.get("group", name)
    if "group" not in extra:
        log.warning("tinyfake: %s has no `group` key; splitting image by image "
                    "(this leaks if several images come from one face)", path)
    prep = _Preparer(size, detect_faces)
    imgs = [prep(img, str(nm)) for img, nm in zip(x, name)]
    prep.report(str(path))
    x = np.stack(imgs) if imgs else np.zeros((0, size, size, 3), np.uint8)
    return FaceDataset(x, y.astype(np.uint8), group, name, source=str(path))
