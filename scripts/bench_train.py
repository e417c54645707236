#!/usr/bin/env python3
"""Training data throughput: what the decoded-face cache and the DataLoader
workers buy (issue 13). Writes bench/results/train.json.

- load: seconds to turn the dataset into faces, with a cold cache (JPEG
  decoding; one thread = the old loader, all threads = the new one) and a
  warm one.
- epoch: training images/s of PhiNet (default width) over the first
  `--batches` batches of one epoch, augmentation in the training process
  (workers 0: the old loop) vs in DataLoader worker processes.

    .venv/bin/python scripts/bench_train.py [--data ../shared/data/dfdc_faces] [--size 64]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "dfdc_faces"


def load_seconds(data: Path, size: int) -> dict:
    from tinyfake.data import load_dataset
    from tinyfake.data.layouts import common

    out = {}
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(common, "IMAGE_CACHE", Path(tmp)):
        for name, threads in (("cold_1_thread", 1), ("cold_all_threads", os.cpu_count() or 1)):
            shutil.rmtree(tmp, ignore_errors=True)
            with mock.patch.object(common.os, "cpu_count", lambda: threads):
                t = time.perf_counter()
                ds = load_dataset(str(data), size)
                out[name] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        load_dataset(str(data), size)
        out["warm_cache"] = round(time.perf_counter() - t, 2)
    out["images"] = len(ds)
    return out


def epoch_rate(train, size: int, policy: str, workers: int, batches: int, batch_size: int) -> float:
    from tinyfake.models import build_model
    from tinyfake.train.loop import balanced_bce, batches as epoch_batches, epoch_loader

    torch.manual_seed(0)
    model = build_model("phinet", size).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = balanced_bce(train.y)
    order = epoch_batches(len(train), batch_size, np.random.default_rng(0))[:batches + 2]
    it = iter(epoch_loader(train, order, policy, 1, workers))
    for _ in range(2):  # warm-up: worker start, first allocations
        x, y = next(it)
    n, t = 0, time.perf_counter()
    for x, y in it:
        loss = loss_fn(model(x).squeeze(1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += len(y)
    return round(n / (time.perf_counter() - t), 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "train.json"))
    args = ap.parse_args()
    from tinyfake.data import load_dataset, split_dataset

    torch.set_num_threads(min(4, os.cpu_count() or 1))
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch threads "
                         f"{torch.get_num_threads()}",
              "data": args.data, "size": args.size, "batch_size": args.batch_size,
              "load_seconds": load_seconds(Path(args.data), args.size)}
    train = split_dataset(load_dataset(args.data, args.size)).train
    rates = {}
    for policy in ("mild", "strong"):
        for workers in (0, 1, 2):
            rates[f"{policy}_workers{workers}"] = epoch_rate(train, args.size, policy, workers,
                                                             args.batches, args.batch_size)
            print(policy, workers, rates[f"{policy}_workers{workers}"], "images/s", flush=True)
    result["epoch_images_per_s"] = rates
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
