"""Datasets -> uint8 NHWC face tensors, group-aware splits, augmentation.

See docs/INTERFACES.md. Layout/scaling conversions live only in
`tinyfake.data.tensors`.
"""
from __future__ import annotations

import numbers
from pathlib import Path

from tinyfake.data.dataset import CLASS_NAMES, FaceDataset, Splits, split_dataset
from tinyfake.errors import UserError

__all__ = ["CLASS_NAMES", "FaceDataset", "Splits", "load_dataset", "split_dataset"]


def load_dataset(source: str | None, size: int, *, skip_corrupt=False,
                 detect_faces=False, layout: str | None = None) -> FaceDataset:
    """Load faces at size x size. `source`: None or "default" (the embedded demo
    set), a folder with `real/` and `fake/`, a research dataset's tree
    (FaceForensics++, Celeb-DF, DFDC, CIFAKE, TrueFace, DFFD: recognized, or
    named by `layout`; see `tinyfake.data.layouts`), a folder of shards that
    `tinyfake prepare` wrote (tinyfake.data.shards), or an `.npz` file."""
    from tinyfake.data import layouts, loaders

    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 8:
        raise UserError(f"input size must be an integer >= 8, got {size}")
    size = int(size)
    if source is None or str(source) == "default":
        from tinyfake.data.default import default_dataset

        return default_dataset(size)
    path = Path(source).expanduser()
    if not path.exists():
        raise UserError(f"dataset {source} does not exist; give a folder with real/ and fake/, "
                        "an .npz file, or leave --data out for the embedded demo set")
    from tinyfake.data import shards
    if path.is_dir() and shards.is_prepared(path):  # `tinyfake prepare`'s output
        ds = shards.load_prepared(path, size)
    elif path.is_dir() and (layout or layouts.detect_layout(path)):
        ds = layouts.load_layout(path, size, layout, skip_corrupt=skip_corrupt, detect_faces=detect_faces)
    elif path.is_dir():
        ds = loaders.load_folder(path, size, skip_corrupt=skip_corrupt, detect_faces=detect_faces)
    elif path.suffix.lower() == ".npz":
        ds = loaders.load_npz(path, size, detect_faces=detect_faces)
    else:
        raise UserError(f"{source} is neither a folder with real/ and fake/ nor an .npz file")
    return ds.check_usable()
