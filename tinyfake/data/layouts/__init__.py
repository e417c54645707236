"""The research datasets' own directory trees -> `FaceDataset`s.

`load_layout(root, size, layout=None)` recognizes (or is told) the layout,
lists every file with its label (1 = fake), group (source video/identity:
splits never separate a group) and category (manipulation method, platform,
generator, part), and turns it into face crops: images directly, videos by
sampling `frames_per_video` evenly spaced frames and cropping the largest
face (frames without one are skipped; crops are cached per video under
~/.cache/tinyfake/video-faces, or $TINYFAKE_CACHE).

Layouts: ffpp (FaceForensics++), celebdf (Celeb-DF v2), dfdc (videos), dfdc-faces
(one face crop per DFDC video + metadata.csv), cifake,
trueface, dffd; see each module for the tree it expects.
"""
from __future__ import annotations

from pathlib import Path

from tinyfake.data.dataset import FaceDataset
from tinyfake.data.layouts import celebdf, cifake, dfdc, dfdc_faces, dffd, ffpp, trueface
from tinyfake.data.layouts.common import FRAMES_PER_VIDEO, Item, build_dataset
from tinyfake.errors import UserError

# checked in this order by `detect_layout`
LAYOUTS = {"ffpp": ffpp, "celebdf": celebdf, "dfdc": dfdc, "dfdc-faces": dfdc_faces, "cifake": cifake,
           "trueface": trueface, "dffd": dffd}
NAMES = {"ffpp": "FaceForensics++", "celebdf": "Celeb-DF v2", "dfdc": "DFDC", "dfdc-faces": "DFDC face crops",
         "cifake": "CIFAKE", "trueface": "TrueFace", "dffd": "DFFD"}

__all__ = ["LAYOUTS", "Item", "detect_layout", "find_items", "load_layout"]


def detect_layout(root: Path) -> str | None:
    """The layout of the tree at `root`, or None (e.g. a plain real/ + fake/ folder)."""
    root = Path(root)
    if (root / "real").is_dir() or (root / "fake").is_dir():
        return None
    return next((name for name, mod in LAYOUTS.items() if mod.detect(root)), None)


def find_items(root: Path, layout: str | None = None, **options) -> tuple[str, list[Item]]:
    root = Path(root)
    name = layout or detect_layout(root)
    if name is None:
        raise UserError(f"{root} is not a known dataset layout ({', '.join(LAYOUTS)}) "
                        "and has no real/ or fake/ sub-folder")
    if name not in LAYOUTS:
        raise UserError(f"unknown dataset layout {name!r}; choose one of: {', '.join(LAYOUTS)}")
    return name, LAYOUTS[name].find(root, **options)


def load_layout(root, size: int, layout: str | None = None, *, frames_per_video: int = FRAMES_PER_VIDEO,
                skip_corrupt=False, detect_faces=False, **options) -> FaceDataset:
    """Face crops of a dataset tree; `options` go to the layout (ffpp:
    compression=; celebdf: part="train"|"test")."""
    name, items = find_items(Path(root), layout, **options)
    return build_dataset(items, Path(root), size, NAMES[name], frames_per_video=frames_per_video,
                         skip_corrupt=skip_corrupt, detect_faces=detect_faces)
