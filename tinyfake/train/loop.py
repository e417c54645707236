"""The labelled training loop of every method (supervised, SimCLR probe and
fine-tuning, distillation, pruning fine-tuning, QAT).

AdamW + cosine schedule, the mild training augmentation, early stopping on
validation ROC-AUC with the best epoch's weights restored; only the
per-batch loss differs (`batch_loss`).
"""
from __future__ import annotations

import copy
import io
import json
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from tinyfake.data.augment import augment_policy, policy_name
from tinyfake.data.tensors import to_float_nchw
from tinyfake.errors import UserError
from tinyfake.models import count_macs_params
from tinyfake.files import write_atomic
from tinyfake.train.distributed import (Ranks, autocast, current_ranks, grad_scaler, resolve_device,
                                        global_batch_layers)
from tinyfake.train.supervised import _evaluate, _json_safe

# batch_loss(model, x float NCHW tensor, y float tensor (N,)) -> scalar loss
BatchLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def balanced_bce(y_train: np.ndarray) -> nn.BCEWithLogitsLoss:
    """Class-balanced BCE on logits, as supervised training uses."""
    n_fake = int(y_train.sum())
    return nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(y_train) - n_fake) / max(1, n_fake)))


def batches(n: int, bs: int, rng: np.random.Generator, min_last: int = 2) -> list[np.ndarray]:
    """A shuffled epoch; drops a last batch smaller than `min_last` (BatchNorm
    needs two samples; under torchrun, two per rank)."""
    order = rng.permutation(n)
    out = [order[i:i + bs] for i in range(0, n, bs)]
    if len(out) > 1 and len(out[-1]) < min_last:
        out.pop()
    return out


class EpochBatches(torch.utils.data.Dataset):
    """One epoch's training batches, augmented and made float NCHW where the
    DataLoader's worker processes run (so augmentation does not stall the
    model). Batch i's augmentation draws from its own seed (epoch seed, i):
    the result does not depend on the number of workers. Under torchrun each
    rank augments the whole global batch and keeps its shard, so N ranks see
    exactly the faces, flips and jitter that one process would."""

    def __init__(self, part, order: list[np.ndarray], policy: str, seed: int, ranks: Ranks):
        self.x, self.y, self.order, self.policy, self.seed, self.ranks = \
            part.x, part.y, order, policy, seed, ranks

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int):
        idx = self.order[i]
        x = augment_policy(self.x[idx], np.random.default_rng((self.seed, i)), self.policy)
        mine = self.ranks.shard
        return (torch.from_numpy(to_float_nchw(mine(x))), torch.from_numpy(mine(self.y[idx])).float(),
                len(idx))


def epoch_loader(part, order, policy: str, seed: int, workers: int, ranks: Ranks) -> torch.utils.data.DataLoader:
    # batch_size=None: the dataset yields whole batches; fork shares the arrays copy-on-write.
    return torch.utils.data.DataLoader(EpochBatches(part, order, policy, seed, ranks), batch_size=None,
                                       num_workers=workers, prefetch_factor=4 if workers else None)


def read_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or not ours: the run cannot continue from it
        raise UserError(f"{path} is not a readable checkpoint ({type(exc).__name__}); "
                        "train the run again from the start") from None


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def fit(model: nn.Module, splits, t: dict, batch_loss: BatchLoss, *, epochs: int, lr: float,
        rng: np.random.Generator, params=None, set_train_mode: Callable | None = None,
        progress: bool | None = None, label: str = "", checkpoint: Path | None = None) -> dict:
    """Train `model` on splits.train with `batch_loss`; keep the best validation-AUC
    weights. Returns {"history", "best_epoch", "best_val_auc"}.

    On the device `t["device"]`, as one rank of a torchrun job when there is
    one (`t["batch_size"]` per rank). After every epoch the main rank writes
    `checkpoint` (model, optimizer, schedule, RNG and early-stopping state);
    a checkpoint of this stage found at the start is continued from, which
    gives the weights an uninterrupted run would have reached."""
    ranks = current_ranks()
    device = resolve_device(t.get("device", "auto"), ranks.local_rank)
    stage = label.strip(": ") or "train"
    tr = splits.train
    model.to(device)
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=t["weight_decay"])
    bs = int(t["batch_size"]) * ranks.world  # the global batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=max(1, math.ceil(len(tr) / bs)) * max(1, epochs))
    scaler = grad_scaler(device)
    loss_fn = balanced_bce(tr.y)
    policy, workers = policy_name(t["augment"]), int(t.get("workers", 0))
    history, best, best_state, best_epoch, stale, first = [], -math.inf, None, 0, 0, 1
    ck = read_checkpoint(checkpoint) if checkpoint is not None and checkpoint.exists() else None
    if ck is not None and ck["stage"] == stage:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        scaler.load_state_dict(ck["scaler"])
        history, best, best_epoch, stale = ck["history"], ck["best"], ck["best_epoch"], ck["stale"]
        best_state = ck["best_state"]
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        first = ck["epoch"] + 1
        if ranks.main:
            tqdm.write(f"{label}resuming after epoch {ck['epoch']}/{epochs}")
    start = time.time() - (history[-1]["seconds"] if history else 0)
    with global_batch_layers(model, ranks) as global_batch:
        net = model if ranks.world == 1 else torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
        for epoch in range(first, epochs + 1):
            if stale >= int(t["patience"]):
                break  # a checkpoint written as early stopping ended the stage
            model.train()
            if set_train_mode:
                set_train_mode(model)
            losses = []
            order = batches(len(tr), bs, rng, min_last=2 * ranks.world)
            loader = epoch_loader(tr, order, policy, int(rng.integers(2**62)), workers, ranks)
            for x, y, n_global in tqdm(loader, desc=f"{label}epoch {epoch}/{epochs}", leave=False,
                                       disable=not ranks.main or (None if progress is None else not progress)):
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                global_batch.size = int(n_global)
                with autocast(device):
                    loss = batch_loss(net, x, y)
                # Ranks' gradients are averaged: weigh each by its share of the global batch.
                scaler.scale(loss * (len(y) * ranks.world / int(n_global))).backward()
                scaler.step(opt)
                scaler.update()
                opt.zero_grad()
                sched.step()
                losses.append(loss.item())
            val = _evaluate(model, splits.val, loss_fn, ranks=ranks)
            history.append(dict(epoch=epoch, stage=stage,
                                train_loss=float(np.mean(losses)) if losses else math.nan,
                                val_loss=val["loss"], val_auc=val["auc"], val_accuracy=val["accuracy"],
                                lr=opt.param_groups[0]["lr"], seconds=round(time.time() - start, 1)))
            improved = val["auc"] > best
            if improved:
                best, best_state, best_epoch, stale = val["auc"], copy.deepcopy(model.state_dict()), epoch, 0
            else:
                stale += 1
            if ranks.main:
                tqdm.write(f"{label}epoch {epoch:3d}  train loss {history[-1]['train_loss']:.4f}  "
                           f"val loss {val['loss']:.4f}  val auc {val['auc']:.4f}{'  *' if improved else ''}")
                if checkpoint is not None:
                    write_atomic(checkpoint, _torch_bytes(dict(
                        stage=stage, epoch=epoch, model=model.state_dict(),
                        opt=opt.state_dict(), sched=sched.state_dict(), scaler=scaler.state_dict(),
                        history=history, best=best, best_state=best_state, best_epoch=best_epoch,
                        stale=stale, rng=rng.bit_generator.state, torch_rng=torch.get_rng_state())))
    if best_state is not None:
        model.load_state_dict(best_state)
    model.to("cpu")
    return {"history": history, "best_epoch": best_epoch, "best_val_auc": best}


def supervised_loss(y_train: np.ndarray) -> BatchLoss:
    loss_fn = balanced_bce(y_train)
    return lambda model, x, y: loss_fn(model(x).squeeze(1), y)


def fit_supervised(config: dict, run, splits, model: nn.Module, rng: np.random.Generator,
                   progress: bool | None = None, label: str = "") -> dict | None:
    """`fit` with the class-balanced BCE (each class weighs the same whatever
    the counts) for [train] epochs at its lr, then `save_run`: supervised
    training, from a fresh model or (finetune) a trained one."""
    t = config["train"]
    start = time.time()
    result = fit(model, splits, t, supervised_loss(splits.train.y), epochs=int(t["epochs"]), lr=t["lr"],
                 rng=rng, progress=progress, label=label, checkpoint=run.checkpoint)
    return save_run(run, config, model, splits, result["history"], result["best_epoch"], start)


def save_run(run, config: dict, model: nn.Module, splits, history: list, best_epoch: int,
             start: float, **extra) -> dict:
    """Write config.toml, metrics.json and, last, model.pt (the same keys as
    supervised training, plus `method` and any `extra`); return the metrics.
    Under torchrun only rank 0 writes (the others return None)."""
    if not current_ranks().main:
        return None
    size = int(config["data"]["size"])
    macs, params = count_macs_params(model, (3, size, size))
    loss_fn = balanced_bce(splits.train.y)
    model.eval()
    metrics = {
        "method": config["train"]["method"],
        "val": _evaluate(model, splits.val, loss_fn),
        "test": _evaluate(model, splits.test, loss_fn, interval=True) if len(splits.test) else None,
        "best_epoch": best_epoch, "epochs_run": len(history),
        "seconds": round(time.time() - start, 1),
        "macs": macs, "params": params,
        "counts": {k: getattr(splits, k).counts() for k in ("train", "val", "test")},
        "history": history, **extra,
    }
    run.write_config(config)
    write_atomic(run.metrics, json.dumps(_json_safe(metrics), indent=2).encode())
    write_atomic(run.model_pt, _torch_bytes(model.state_dict()))
    run.checkpoint.unlink(missing_ok=True)
    return metrics
