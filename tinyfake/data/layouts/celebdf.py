"""Celeb-DF v2 (Li et al. 2020):

    Celeb-real/id0_0000.mp4          real, category "Celeb-real", identity id0
    YouTube-real/00000.mp4           real, category "YouTube-real" (identity unknown: its own group)
    Celeb-synthesis/id0_id1_0000.mp4 fake, category "Celeb-synthesis": id0's video with id1's face
    List_of_testing_videos.txt       "<label> <path>" lines; label 1 = REAL, 0 = fake in this file

Groups join the celebrity ids a video shows (union-find), so a synthesis
video and both celebrities' real videos stay on one side of a split.
`part="test"` keeps only the videos in the official testing list,
`part="train"` only the others; the list's labels are checked against the folders.
"""
from __future__ import annotations

import re
from pathlib import Path

from tinyfake.data.layouts.common import Groups, Item
from tinyfake.data.layouts.video import VIDEO_EXTS
from tinyfake.errors import UserError

FOLDERS = {"Celeb-real": 0, "YouTube-real": 0, "Celeb-synthesis": 1}
TEST_LIST = "List_of_testing_videos.txt"


def detect(root: Path) -> bool:
    return (root / "Celeb-synthesis").is_dir() or (root / "Celeb-real").is_dir()


def test_list(root: Path) -> dict[str, int]:
    """Relative path -> tinyfake label (1 = fake) from the official testing list."""
    path = root / TEST_LIST
    if not path.exists():
        return {}
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1"):
            raise UserError(f"{path}:{n}: expected '<1 real | 0 fake> <path>', got {line.strip()!r}")
        out[parts[1]] = 1 - int(parts[0])  # the list says 1 = real
    return out


def find(root: Path, part: str | None = None) -> list[Item]:
    listed = test_list(root)
    groups, found = Groups(), []
    for folder, label in FOLDERS.items():
        d = root / folder
        for v in sorted(d.iterdir()) if d.is_dir() else []:
            if v.suffix.lower() not in VIDEO_EXTS:
                continue
            rel = f"{folder}/{v.name}"
            if rel in listed and listed[rel] != label:
                raise UserError(f"{root / TEST_LIST} labels {rel} {'fake' if listed[rel] else 'real'}, "
                                f"but it is in {folder}/")
            if part is not None and (rel in listed) != (part == "test"):
                continue
            ids = re.findall(r"id\d+", v.stem) if folder != "YouTube-real" else []
            ids = ids[:2] or [f"yt{v.stem}"]
            groups.union(*ids)
            found.append((v, label, folder, ids))
    return [Item(p, label, "celebdf:" + groups.find(ids[0]), cat, video=True) for p, label, cat, ids in found]
