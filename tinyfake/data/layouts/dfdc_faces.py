"""DFDC face crops in the "deepfake faces" layout people download: one face
crop per DFDC video and a CSV of the videos,

    metadata.csv     videoname,original_width,original_height,label,original[,group][,category]
    faces_224/<video stem>.jpg

label is REAL or FAKE; a FAKE row's `original` is the REAL video it was made
from. Group = the source video (a fake's `original`, a real video's own
name), so a fake and its source never land on two sides of a split; a fake
without an `original` is its own group. Category: a `category` or `method`
column when the CSV has one. Like DFDC's own metadata this names no actors,
so one person can still appear in two groups.
"""
from __future__ import annotations

import csv
from pathlib import Path

from tinyfake.data.layouts.common import Item
from tinyfake.errors import UserError

CSV_NAME = "metadata.csv"
IMAGE_DIR = "faces_224"
REQUIRED = ("videoname", "label", "original")
LABELS = {"REAL": 0, "FAKE": 1}


def detect(root: Path) -> bool:
    return (root / CSV_NAME).is_file() and (root / IMAGE_DIR).is_dir()


def _rows(path: Path):
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise UserError(f"{path}:1: the header lacks column(s) {', '.join(missing)} "
                                f"(has {', '.join(header) or 'none'}); a DFDC face-crop CSV needs "
                                f"{', '.join(REQUIRED)}")
            reader.fieldnames = header
            yield from enumerate(reader, start=2)  # line 1 is the header
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {path} as a DFDC face-crop CSV ({exc})") from None


def find(root: Path) -> list[Item]:
    meta, images = root / CSV_NAME, root / IMAGE_DIR
    items, seen = [], set()
    for line, row in _rows(meta):
        video = (row.get("videoname") or "").strip()
        where = f"{meta}:{line}"
        if not video:
            raise UserError(f"{where}: the row has no videoname")
        label = LABELS.get((row.get("label") or "").strip().upper())
        if label is None:
            raise UserError(f"{where}: {video} has label {row.get('label')!r}, expected REAL or FAKE")
        stem = Path(video).stem
        if stem in seen:
            raise UserError(f"{where}: {video} is listed twice")
        seen.add(stem)
        path = images / f"{stem}.jpg"
        if not path.is_file():
            raise UserError(f"{where}: the image of {video} is missing ({path}); "
                            "restore it or delete its row")
        original = (row.get("original") or "").strip() if label == 1 else ""
        category = (row.get("category") or row.get("method") or "").strip()
        items.append(Item(path, label, "dfdc:" + Path(original or video).stem, category))
    return items
