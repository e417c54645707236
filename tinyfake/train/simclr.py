"""SimCLR self-supervised pre-training, then a linear probe (or fine-tuning).

1. Pre-training: two augmented views of every training face (labels ignored),
   backbone -> global average pool -> projection head Linear -> ReLU ->
   Linear(128), NT-Xent loss (cosine similarity / temperature).
2. The projection head is discarded. `simclr`: the model's own one-logit head
   (`fc`) is trained with labels on the frozen backbone (weights and BatchNorm
   statistics fixed) -- a linear probe. `simclr-finetune`: the same, then the
   whole network is trained with labels.

The result is the same module type as supervised training, so export and the
compiler work unchanged.
"""
from __future__ import annotations

import math
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from tinyfake.data.augment import augment_batch
from tinyfake.data.compress import jpeg_recompress
from tinyfake.data.tensors import to_float_nchw
from tinyfake.train.loop import batches, fit, save_run, supervised_loss

SIMCLR_DEFAULTS = dict(temperature=0.07, pretrain_epochs=20, pretrain_batch_size=64,
                       pretrain_lr=2e-3, proj_dim=128, probe_epochs=20, probe_lr=1e-2,
                       finetune_epochs=20, finetune_lr=1e-3)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """NT-Xent (normalized temperature-scaled cross entropy) of N positive pairs.

    Row i of z1 and row i of z2 are two views of one image. For each of the 2N
    embeddings, the positive is its pair and the 2N-2 others are negatives:
    loss_i = -log(exp(sim(i, pos)/t) / sum_{k != i} exp(sim(i, k)/t)), with
    sim the cosine similarity; the mean over all 2N.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"expected two (N, D) embeddings, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def simclr_views(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random view per uint8 NHWC face: flip + shift + strong colour jitter,
    then each with its own probability: Gaussian blur, greyscale, JPEG
    re-compression (quality 30-95), Gaussian noise, cutout."""
    out = augment_batch(x, rng, max_shift=0.1, brightness=0.4, contrast=0.4, saturation=0.4)
    n, h, w, _ = out.shape
    for i in range(n):
        if rng.random() < 0.5:
            sigma = rng.uniform(0.1, 1.5)
            out[i] = cv2.GaussianBlur(out[i], (0, 0), sigma)
        if rng.random() < 0.2:
            out[i] = out[i].mean(axis=2, keepdims=True).round().astype(np.uint8)
        if rng.random() < 0.5:
            out[i] = jpeg_recompress(out[i:i + 1], int(rng.integers(30, 96)))[0]
    f = out.astype(np.float32)
    noisy = rng.random(n) < 0.5
    sigma = rng.uniform(2, 10, (int(noisy.sum()), 1, 1, 1)).astype(np.float32)
    f[noisy] += sigma * rng.standard_normal(f[noisy].shape).astype(np.float32)
    for i in np.flatnonzero(rng.random(n) < 0.5):  # cutout: one grey square
        s = int(rng.integers(h // 8, h // 3 + 1))
        y0, x0 = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
        f[i, y0:y0 + s, x0:x0 + s] = 127.0
    return np.clip(np.round(f), 0, 255).astype(np.uint8)


class SimCLRNet(nn.Module):
    """The classifier's backbone + pool, with a projection head for pre-training."""

    def __init__(self, classifier: nn.Module, proj_dim: int = 128):
        super().__init__()
        self.classifier = classifier
        width = classifier.fc.in_features
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, proj_dim))

    def features(self, x):
        c = self.classifier
        return torch.flatten(c.pool(c.backbone(x)), 1)

    def forward(self, x):
        return self.head(self.features(x))


def pretrain(model: nn.Module, images: np.ndarray, s: dict, rng: np.random.Generator,
             progress: bool | None = None, device_option: str = "auto") -> list[dict]:
    """SimCLR pre-training of model.backbone on unlabelled uint8 NHWC `images`.

    Under torchrun, data-parallel like loop.fit: `pretrain_batch_size` per
    rank, every rank makes both views of the whole global batch (the same
    augmentation as one process) and keeps its shard, BatchNorm and dropout
    act on the global batch, the embeddings are gathered so that NT-Xent sees
    every negative of the global batch, and gradients are averaged."""
    from tinyfake.train.distributed import (average_gradients, current_ranks, gather_shards,
                                            global_batch_layers, resolve_device)

    ranks = current_ranks()
    device = resolve_device(device_option, ranks.local_rank)
    net = SimCLRNet(model, int(s["proj_dim"])).to(device)
    params = list(model.backbone.parameters()) + list(net.head.parameters())
    epochs, bs = int(s["pretrain_epochs"]), int(s["pretrain_batch_size"]) * ranks.world
    opt = torch.optim.AdamW(params, lr=s["pretrain_lr"], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=max(1, math.ceil(len(images) / bs)) * max(1, epochs))
    history, start = [], time.time()

    def views(x):
        return torch.from_numpy(to_float_nchw(ranks.shard(simclr_views(x, rng)))).to(device)

    with global_batch_layers(net, ranks) as global_batch:
        for epoch in range(1, epochs + 1):
            net.train()
            losses = []
            for idx in tqdm(batches(len(images), bs, rng, min_last=2 * ranks.world),
                            desc=f"simclr epoch {epoch}/{epochs}", leave=False,
                            disable=not ranks.main or (None if progress is None else not progress)):
                x = images[idx]
                v1, v2 = views(x), views(x)
                global_batch.size = len(idx)
                z1, z2 = (gather_shards(net(v), len(idx), ranks) for v in (v1, v2))
                loss = nt_xent(z1, z2, s["temperature"])
                opt.zero_grad()
                loss.backward()
                average_gradients(params, ranks)
                opt.step()
                sched.step()
                losses.append(loss.item())
            history.append(dict(epoch=epoch, stage="simclr", train_loss=float(np.mean(losses)),
                                lr=opt.param_groups[0]["lr"], seconds=round(time.time() - start, 1)))
            if ranks.main:
                tqdm.write(f"simclr epoch {epoch:3d}  nt-xent {history[-1]['train_loss']:.4f}")
    model.to("cpu")
    return history


def _frozen_backbone(model: nn.Module) -> None:
    model.backbone.eval()  # BatchNorm statistics stay those of pre-training


def train_simclr(config: dict, run, splits, model: nn.Module, rng, progress=None) -> dict:
    t = config["train"]
    s = t["simclr"]
    start = time.time()
    history = pretrain(model, splits.train.x, s, rng, progress, t.get("device", "auto"))

    for p in model.backbone.parameters():
        p.requires_grad_(False)
    probe = fit(model, splits, t, supervised_loss(splits.train.y), epochs=int(s["probe_epochs"]),
                lr=s["probe_lr"], rng=rng, params=model.fc.parameters(), set_train_mode=_frozen_backbone,
                progress=progress, label="probe: ", checkpoint=run.checkpoint)
    history += probe["history"]
    best_epoch, probe_auc = probe["best_epoch"], probe["best_val_auc"]
    for p in model.backbone.parameters():
        p.requires_grad_(True)
    if t["method"] == "simclr-finetune":
        tune = fit(model, splits, t, supervised_loss(splits.train.y), epochs=int(s["finetune_epochs"]),
                   lr=s["finetune_lr"], rng=rng, progress=progress, label="finetune: ",
                   checkpoint=run.checkpoint)
        history += tune["history"]
        best_epoch = tune["best_epoch"]
    return save_run(run, config, model, splits, history, best_epoch, start,
                    probe_val_auc=probe_auc)
