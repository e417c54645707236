"""DFDC (Dolhansky et al. 2020): one or more parts, each a folder of mp4s with

    metadata.json   {"abc.mp4": {"label": "FAKE", "original": "xyz.mp4", "split": "train"}, ...}

(or a single metadata.json next to the videos). A fake's group is its
original video; a real video is its own group's original. Category = the
part folder's name. The metadata has no actor ids, so two originals of one
actor can still land on two sides: a known limit of DFDC's public metadata.
"""
from __future__ import annotations

import json
from pathlib import Path

from tinyfake.data.layouts.common import Item
from tinyfake.errors import UserError


def _metadata_files(root: Path) -> list[Path]:
    if (root / "metadata.json").exists():
        return [root / "metadata.json"]
    return sorted(root.glob("*/metadata.json"))


def detect(root: Path) -> bool:
    return bool(_metadata_files(root))


def find(root: Path) -> list[Item]:
    items = []
    for meta in _metadata_files(root):
        try:
            entries = json.loads(meta.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {meta} as DFDC metadata ({exc})") from None
        part = meta.parent.name if meta.parent != root else ""
        for name, e in sorted(entries.items()):
            label = {"FAKE": 1, "REAL": 0}.get(str(e.get("label", "")).upper())
            if label is None:
                raise UserError(f"{meta}: {name} has label {e.get('label')!r}, expected FAKE or REAL")
            path = meta.parent / name
            if not path.exists():
                continue  # parts are often downloaded partially
            original = e.get("original") if label == 1 else None
            group = Path(original or name).stem
            items.append(Item(path, label, "dfdc:" + group, part, video=True))
    return items
