"""The labelled training loop of every method (supervised, SimCLR probe and
fine-tuning, distillation, pruning fine-tuning, QAT).

AdamW + cosine schedule, the mild training augmentation, early stopping on
validation ROC-AUC with the best epoch's weights restored; only the
per-batch loss differs (`batch_loss`).
"""
from __future__ import annotations

import copy
import json
import math
import time
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from tinyfake.data.augment import augment_policy, policy_name
from tinyfake.data.tensors import to_float_nchw
from tinyfake.models import count_macs_params
from tinyfake.train.supervised import _evaluate, _json_safe

# batch_loss(model, x float NCHW tensor, y float tensor (N,)) -> scalar loss
BatchLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def balanced_bce(y_train: np.ndarray) -> nn.BCEWithLogitsLoss:
    """Class-balanced BCE on logits, as supervised training uses."""
    n_fake = int(y_train.sum())
    return nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(y_train) - n_fake) / max(1, n_fake)))


def batches(n: int, bs: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A shuffled epoch; drops a last batch of one (BatchNorm needs two samples)."""
    order = rng.permutation(n)
    out = [order[i:i + bs] for i in range(0, n, bs)]
    if len(out) > 1 and len(out[-1]) < 2:
        out.pop()
    return out


class EpochBatches(torch.utils.data.Dataset):
    """One epoch's training batches, augmented and made float NCHW where the
    DataLoader's worker processes run (so augmentation does not stall the
    model). Batch i's augmentation draws from its own seed (epoch seed, i):
    the result does not depend on the number of workers."""

    def __init__(self, part, order: list[np.ndarray], policy: str, seed: int):
        self.x, self.y, self.order, self.policy, self.seed = part.x, part.y, order, policy, seed

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int):
        idx = self.order[i]
        x = augment_policy(self.x[idx], np.random.default_rng((self.seed, i)), self.policy)
        return torch.from_numpy(to_float_nchw(x)), torch.from_numpy(self.y[idx]).float()


def epoch_loader(part, order, policy: str, seed: int, workers: int) -> torch.utils.data.DataLoader:
    # batch_size=None: the dataset yields whole batches; fork shares the arrays copy-on-write.
    return torch.utils.data.DataLoader(EpochBatches(part, order, policy, seed), batch_size=None,
                                       num_workers=workers, prefetch_factor=4 if workers else None)


def fit(model: nn.Module, splits, t: dict, batch_loss: BatchLoss, *, epochs: int, lr: float,
        rng: np.random.Generator, params=None, set_train_mode: Callable | None = None,
        progress: bool | None = None, label: str = "") -> dict:
    """Train `model` on splits.train with `batch_loss`; keep the best validation-AUC
    weights. Returns {"history", "best_epoch", "best_val_auc"}."""
    tr = splits.train
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=t["weight_decay"])
    bs = int(t["batch_size"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=max(1, math.ceil(len(tr) / bs)) * max(1, epochs))
    loss_fn = balanced_bce(tr.y)
    policy, workers = policy_name(t["augment"]), int(t.get("workers", 0))
    history, best, best_state, best_epoch, stale = [], -math.inf, None, 0, 0
    start = time.time()
    for epoch in range(1, epochs + 1):
        model.train()
        if set_train_mode:
            set_train_mode(model)
        losses = []
        order = batches(len(tr), bs, rng)
        loader = epoch_loader(tr, order, policy, int(rng.integers(2**62)), workers)
        for x, y in tqdm(loader, desc=f"{label}epoch {epoch}/{epochs}", leave=False,
                         disable=None if progress is None else not progress):
            loss = batch_loss(model, x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        val = _evaluate(model, splits.val, loss_fn)
        history.append(dict(epoch=epoch, stage=label.strip(": ") or "train",
                            train_loss=float(np.mean(losses)) if losses else math.nan,
                            val_loss=val["loss"], val_auc=val["auc"], val_accuracy=val["accuracy"],
                            lr=opt.param_groups[0]["lr"], seconds=round(time.time() - start, 1)))
        improved = val["auc"] > best
        if improved:
            best, best_state, best_epoch, stale = val["auc"], copy.deepcopy(model.state_dict()), epoch, 0
        else:
            stale += 1
        tqdm.write(f"{label}epoch {epoch:3d}  train loss {history[-1]['train_loss']:.4f}  "
                   f"val loss {val['loss']:.4f}  val auc {val['auc']:.4f}{'  *' if improved else ''}")
        if stale >= int(t["patience"]):
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"history": history, "best_epoch": best_epoch, "best_val_auc": best}


def supervised_loss(y_train: np.ndarray) -> BatchLoss:
    loss_fn = balanced_bce(y_train)
    return lambda model, x, y: loss_fn(model(x).squeeze(1), y)


def save_run(run, config: dict, model: nn.Module, splits, history: list, best_epoch: int,
             start: float, **extra) -> dict:
    """Write config.toml, model.pt and metrics.json (the same keys as supervised
    training, plus `method` and any `extra`) and return the metrics."""
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
    torch.save(model.state_dict(), run.model_pt)
    with open(run.metrics, "w") as f:
        json.dump(_json_safe(metrics), f, indent=2)
    return metrics
