"""`tinyfake prepare`: a video dataset's face crops, once, in parallel, as shards.

    tinyfake prepare --data TREE --out DIR [--frames-per-video K] [--workers N]

walks a FaceForensics++ / Celeb-DF / DFDC tree (any layout tinyfake reads),
samples K evenly spaced frames per video, crops the largest face in worker
processes and writes WebDataset shards (tinyfake.data.shards) that
`tinyfake train --data DIR` reads. Labels, groups and categories come from
the layout, as when training on the tree itself. A shard is written whole or
not at all, so a rerun after Ctrl-C or a kill does only the shards that are
missing.
"""
from __future__ import annotations

import argparse
import os
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from tqdm import tqdm

from tinyfake.errors import UserError

HELP = "crop the faces of a video dataset once, in parallel, into WebDataset shards for training"

VIDEOS_PER_SHARD = 64
DEFAULT_SIZE = 128  # stored crops; training resizes them down to its --size


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tinyfake.data.layouts import LAYOUTS
    from tinyfake.data.layouts.common import FRAMES_PER_VIDEO

    p.add_argument("--data", required=True, metavar="TREE", help="the dataset tree (FaceForensics++, "
                   "Celeb-DF v2, DFDC, ...: detected as `tinyfake train --data` detects it)")
    p.add_argument("--out", required=True, metavar="DIR", help="where the shards go (resumable)")
    p.add_argument("--layout", choices=sorted(LAYOUTS), help="the tree's layout, if detection is not enough")
    p.add_argument("--frames-per-video", type=int, default=FRAMES_PER_VIDEO,
                   help=f"evenly spaced frames sampled per video (default {FRAMES_PER_VIDEO})")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE,
                   help=f"stored face crops in pixels (default {DEFAULT_SIZE}; train at this size or less)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes that decode and crop (default: one per core)")
    p.add_argument("--videos-per-shard", type=int, default=VIDEOS_PER_SHARD,
                   help=f"videos per shard (default {VIDEOS_PER_SHARD})")


def _check(args) -> None:
    for name, low, high in (("frames_per_video", 1, 10_000), ("size", 8, 512), ("workers", 1, 1024),
                            ("videos_per_shard", 1, 1_000_000)):
        v = getattr(args, name)
        if not low <= v <= high:
            raise UserError(f"--{name.replace('_', '-')} must be from {low} to {high}, got {v}")
    if not Path(args.data).is_dir():
        raise UserError(f"--data {args.data} is not a folder; give a dataset tree")


def make_plan(args) -> dict:
    from tinyfake.data.layouts import find_items

    root = Path(args.data).expanduser().resolve()
    layout, items = find_items(root, args.layout)
    if not items:
        raise UserError(f"{root} looks like a {layout} tree but lists no videos or images")
    rows = [dict(path=it.path.relative_to(root).as_posix(), label=it.label, group=it.group,
                 category=it.category, video=it.video) for it in items]
    n = args.videos_per_shard
    return dict(source=str(root), layout=layout, size=args.size, frames_per_video=args.frames_per_video,
                shards=[rows[i:i + n] for i in range(0, len(rows), n)])


def _ignore_sigint() -> None:
    # Ctrl-C is for the main process: it stops handing out shards; a worker
    # finishes (or, killed, abandons) the shard it is writing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def prepare_shard(out: str, index: int, source: str, size: int, frames: int, rows: list[dict]) -> dict:
    """Crop one shard's videos (in a worker process) and write the shard."""
    from tinyfake.data.layouts.common import _decode_image, video_face_crops
    from tinyfake.data.shards import Face, write_shard

    faces, no_face, unreadable = [], [], []
    for v, row in enumerate(rows):
        path = Path(source) / row["path"]
        try:
            if row["video"]:
                crops, index_of = video_face_crops(path, size, frames)
            else:
                crop = _decode_image(path, size, detect_faces=True)
                if crop is None:
                    raise UserError(f"{path} does not decode")
                crops, index_of = [crop], [0]
        except UserError:
            unreadable.append(row["path"])
            continue
        if not len(crops):
            no_face.append(row["path"])
        for crop, frame in zip(crops, index_of):
            faces.append(Face(f"{index:06d}_{v:05d}_{frame:06d}", crop, row["label"], row["group"],
                              row["category"], row["path"], int(frame)))
    summary = dict(videos=len(rows), faces=len(faces), no_face=no_face, unreadable=unreadable)
    write_shard(Path(out), index, faces, summary)
    return summary


def prepare(args) -> dict:
    from tinyfake.data import shards

    _check(args)
    out = Path(args.out)
    plan = make_plan(args)
    if shards.is_prepared(out):
        old = shards.read_plan(out)
        if {k: old.get(k) for k in plan} != plan:
            raise UserError(f"{out} was prepared from other data or options ({old['source']}, "
                            f"{old['size']} px, {old['frames_per_video']} frames per video); "
                            "give another --out or delete it")
    out.mkdir(parents=True, exist_ok=True)
    for tmp in out.glob(".*.tmp"):  # what a killed run was writing
        tmp.unlink()
    shards.write_plan(out, plan)
    done = shards.done_shards(out, plan)
    todo = [i for i in range(len(plan["shards"])) if i not in done]
    total = sum(len(s) for s in plan["shards"])
    if done:
        print(f"{len(done)} of {len(plan['shards'])} shards already done; preparing the other {len(todo)}")
    bar = tqdm(total=total, initial=total - sum(len(plan["shards"][i]) for i in todo), unit="video",
               desc="cropping faces", disable=None)
    with ProcessPoolExecutor(max_workers=min(args.workers, max(1, len(todo))), initializer=_ignore_sigint) as pool:
        pending = {pool.submit(prepare_shard, str(out), i, plan["source"], plan["size"],
                               plan["frames_per_video"], plan["shards"][i]): i for i in todo}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    i = pending.pop(f)
                    done[i] = f.result()
                    bar.update(len(plan["shards"][i]))
        except KeyboardInterrupt:
            pool.shutdown(wait=True, cancel_futures=True)
            raise UserError(f"interrupted: {len(done)} of {len(plan['shards'])} shards are done; "
                            f"run the same command again to prepare the rest") from None
    bar.close()
    return summarize(out, plan, done)


def summarize(out: Path, plan: dict, done: dict[int, dict]) -> dict:
    summary = dict(shards=len(done), videos=sum(d["videos"] for d in done.values()),
                   faces=sum(d["faces"] for d in done.values()),
                   no_face=sorted(v for d in done.values() for v in d["no_face"]),
                   unreadable=sorted(v for d in done.values() for v in d["unreadable"]))
    print(f"prepared {out}: {summary['faces']} faces from {summary['videos']} videos in "
          f"{summary['shards']} shards ({plan['layout']}, {plan['size']} px, "
          f"{plan['frames_per_video']} frames per video)")
    for what, why in (("no_face", "with no face in their sampled frames"), ("unreadable", "unreadable")):
        if summary[what]:
            print(f"  {len(summary[what])} videos {why}: "
                  f"{', '.join(summary[what][:5])}{' ...' if len(summary[what]) > 5 else ''}")
    return summary


def run(args) -> int:
    prepare(args)
    return 0
