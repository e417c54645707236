"""Prepared face shards: what `tinyfake prepare` writes and training reads.

A prepared folder holds

    prepared.json            the plan: source tree, layout, crop size, frames per
                             video, and which videos go into which shard
    faces-000000.tar ...     WebDataset shards (https://github.com/webdataset):
                             per face <key>.png (the crop) and <key>.json
                             ({"label", "group", "category", "video", "frame"})
    faces-000000.json ...    per shard, written after its tar: the videos it
                             covers, faces found, videos with no face or
                             unreadable. Its presence marks the shard done.

Why WebDataset: plain POSIX tar files that any tool lists and that PyTorch
pipelines (webdataset, torchdata, Ray, ...) stream shard by shard, sequential
reads at any scale, maintained on PyPI; a home-made format would need its own
reader everywhere.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tinyfake.errors import UserError
from tinyfake.files import write_atomic

FORMAT = "tinyfake-webdataset-faces"
VERSION = 1
PLAN = "prepared.json"


def is_prepared(root: Path) -> bool:
    return (Path(root) / PLAN).is_file()


def shard_name(index: int) -> str:
    return f"faces-{index:06d}"


@dataclass
class Face:
    key: str
    crop: np.ndarray  # uint8 RGB (size, size, 3)
    label: int
    group: str
    category: str
    video: str
    frame: int


def write_shard(root: Path, index: int, faces: list[Face], summary: dict) -> None:
    """The shard's tar, then its summary (the done marker), each written
    atomically: a kill leaves either a whole shard or none."""
    import webdataset as wds

    name = shard_name(index)
    tar = io.BytesIO()
    with wds.TarWriter(tar, encoder=False, mtime=0) as sink:
        for face in faces:
            ok, png = cv2.imencode(".png", cv2.cvtColor(face.crop, cv2.COLOR_RGB2BGR))
            assert ok
            meta = dict(label=face.label, group=face.group, category=face.category,
                        video=face.video, frame=face.frame)
            sink.write({"__key__": face.key, "png": png.tobytes(), "json": json.dumps(meta).encode()})
    write_atomic(root / f"{name}.tar", tar.getvalue())
    write_atomic(root / f"{name}.json", json.dumps(summary, indent=1))


def write_plan(root: Path, plan: dict) -> None:
    write_atomic(root / PLAN, json.dumps({"format": FORMAT, "version": VERSION, **plan}, indent=1))


def read_plan(root: Path) -> dict:
    path = Path(root) / PLAN
    try:
        plan = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} ({exc}); prepare the folder again with `tinyfake prepare`") from None
    if plan.get("format") != FORMAT or plan.get("version") != VERSION:
        raise UserError(f"{path} is not a tinyfake prepare plan of version {VERSION}; prepare it again")
    return plan


def done_shards(root: Path, plan: dict) -> dict[int, dict]:
    """{shard index: its summary} for the shards whose tar and summary are both there."""
    out = {}
    for i in range(len(plan["shards"])):
        name = shard_name(i)
        summary = root / f"{name}.json"
        if summary.is_file() and (root / f"{name}.tar").is_file():
            out[i] = json.loads(summary.read_text())
    return out


def load_prepared(root: Path, size: int):
    """A FaceDataset of every face in a completely prepared folder, resized to `size`."""
    import webdataset as wds

    from tinyfake.data.dataset import FaceDataset
    from tinyfake.data.faces import resize

    root = Path(root)
    plan = read_plan(root)
    done = done_shards(root, plan)
    missing = len(plan["shards"]) - len(done)
    if missing:
        raise UserError(f"{root} is prepared only in part ({missing} of {len(plan['shards'])} shards "
                        f"missing); finish it: tinyfake prepare --data {plan['source']} --out {root}")
    if size > plan["size"]:
        raise UserError(f"{root} holds {plan['size']} px faces; train at --size {plan['size']} or less, "
                        f"or prepare again with --size {size}")
    urls = [str(root / f"{shard_name(i)}.tar") for i in sorted(done)]
    xs, ys, groups, names, cats = [], [], [], [], []
    if urls:
        for sample in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
            meta = json.loads(sample["json"])
            bgr = cv2.imdecode(np.frombuffer(sample["png"], np.uint8), cv2.IMREAD_COLOR)
            if bgr is None:
                raise UserError(f"a face in {sample['__url__']} ({sample['__key__']}) does not decode; "
                                "prepare the folder again")
            xs.append(resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size))
            ys.append(int(meta["label"]))
            groups.append(meta["group"])
            names.append(f"{meta['video']}#{meta['frame']}")
            cats.append(meta["category"])
    x = np.stack(xs) if xs else np.zeros((0, size, size, 3), np.uint8)
    return FaceDataset(x, np.array(ys, np.uint8), np.array(groups, str), np.array(names, str),
                       source=str(root), category=np.array(cats, str))

