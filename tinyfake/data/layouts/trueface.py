"""TrueFace (Boato et al. 2022): real (FFHQ) and StyleGAN faces before and
after sharing on social networks. Assumed layout (the release's folders):

    [Train|Test/]TrueFace_PreSocial/{Real,Fake}/<source>/**/*.png
    [Train|Test/]TrueFace_PostSocial/<Facebook|Telegram|Twitter|...>/{Real,Fake}/<source>/**/*.jpg

Label from the Real/Fake folder; category = "presocial" or the platform
(lower case), so per-category metrics show what sharing does to a detector.
Group = label + file stem: a shared copy keeps its original's stem, so an
image and its copies on every platform stay on one side of a split.
"""
from __future__ import annotations

from pathlib import Path

from tinyfake.data.layouts.common import Item, files
from tinyfake.data.loaders import IMAGE_EXTS


def _social_dirs(root: Path) -> list[Path]:
    return sorted(d for pattern in ("*Social*", "*/*Social*") for d in root.glob(pattern)
                  if d.is_dir() and ("presocial" in d.name.lower() or "postsocial" in d.name.lower()))


def detect(root: Path) -> bool:
    return bool(_social_dirs(root))


def find(root: Path) -> list[Item]:
    items = []
    for top in _social_dirs(root):
        pre = "presocial" in top.name.lower()
        for f in files(top, IMAGE_EXTS):
            parts = [p.lower() for p in f.relative_to(top).parts[:-1]]
            cls = next((p for p in parts if p in ("real", "fake")), None)
            if cls is None:
                continue
            label = int(cls == "fake")
            platform = "presocial" if pre else parts[0]
            items.append(Item(f, label, f"trueface:{cls}/{f.stem}", platform))
    return items
