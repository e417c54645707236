"""Structured (channel) pruning of a trained run, with fine-tuning between steps.

Global channel pruning with torch-pruning: its dependency graph keeps coupled
channels together (residual adds, depthwise convolutions, squeeze-excite
products, BatchNorm), and first-order Taylor importance |w * dL/dw| ranks
channel groups across the whole network. Pruning goes in `steps` steps to a
target fraction of MACs (or parameters) removed; after each step the model
is fine-tuned with labels (or distilled from `--teacher`).

A pruned model is the same module type with narrower layers. `model.pt`
stays a plain state dict; `fit_to_state_dict` re-shapes a freshly built model
to it, which is how `load_trained` re-opens a pruned run.
"""
from __future__ import annotations

import time

import torch
from torch import nn

from tinyfake.data.tensors import to_float_nchw
from tinyfake.errors import UserError
from tinyfake.models import count_macs_params
from tinyfake.train.loop import balanced_bce, batches, fit, save_run, supervised_loss

PRUNE_DEFAULTS = dict(init="", ratio=0.5, target="macs", steps=3, finetune_epochs=5,
                      finetune_lr=1e-3, importance_batches=8)


def _torch_pruning():
    try:
        import torch_pruning
    except ImportError:
        raise UserError("torch-pruning is not installed; run scripts/setup.sh") from None
    return torch_pruning


def fit_to_state_dict(model: nn.Module, state: dict) -> nn.Module:
    """Narrow the Conv2d / BatchNorm2d / Linear layers of `model` to the shapes in
    `state` (a pruned model's state dict); other layers must already match."""
    for name, m in model.named_modules():
        key = f"{name}.weight" if name else "weight"
        if key not in state or not isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
            continue
        w = state[key]
        if tuple(w.shape) == tuple(m.weight.shape):
            continue
        if isinstance(m, nn.Conv2d):
            depthwise = m.groups > 1 and m.groups == m.in_channels
            if m.groups > 1 and not depthwise:
                raise ValueError(f"cannot re-shape grouped convolution {name}")
            mult = m.out_channels // m.groups if depthwise else 1
            m.out_channels = int(w.shape[0])
            m.groups = m.out_channels // mult if depthwise else 1
            m.in_channels = m.groups if depthwise else int(w.shape[1])
        elif isinstance(m, nn.BatchNorm2d):
            m.num_features = int(w.shape[0])
            for buf in ("running_mean", "running_var"):
                setattr(m, buf, torch.empty(w.shape[0]))
        else:
            m.out_features, m.in_features = int(w.shape[0]), int(w.shape[1])
        m.weight = nn.Parameter(torch.empty_like(w))
        if getattr(m, "bias", None) is not None:
            m.bias = nn.Parameter(torch.empty(w.shape[0]))
    model.load_state_dict(state)
    return model


def _ignored_layers(model: nn.Module) -> list[nn.Module]:
    """Layers whose channels are the interface: the one-logit head, and any
    convolution reading the 3 image channels (PhiNet starts with a depthwise
    convolution over RGB, whose channels are the input's)."""
    keep = [model.fc]
    keep += [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.in_channels == 3]
    return keep


def _accumulate_taylor_grads(model, splits, loss_fn, n_batches, bs, rng) -> None:
    model.eval()  # BatchNorm statistics as at inference
    model.zero_grad()
    tr = splits.train
    for idx in batches(len(tr), bs, rng)[:n_batches]:
        x = torch.from_numpy(to_float_nchw(tr.x[idx]))
        loss_fn(model, x, torch.from_numpy(tr.y[idx]).float()).backward()


def prune_model(model: nn.Module, size: int, splits, loss_fn, p: dict, rng, finetune=None) -> list[dict]:
    """Prune `model` in place to the target; `finetune(model, step)` runs after each step.
    Returns the per-step record (macs, params)."""
    tp = _torch_pruning()
    ratio, steps = float(p["ratio"]), int(p["steps"])
    if not 0 < ratio < 1:
        raise UserError(f"--prune-ratio must be between 0 and 1 (fraction removed), got {ratio}")
    if p["target"] not in ("macs", "params"):
        raise UserError(f"--prune-target must be macs or params, got {p['target']!r}")
    if steps < 1:
        raise UserError(f"--prune-steps must be at least 1, got {steps}")
    shape = (3, size, size)
    what = 0 if p["target"] == "macs" else 1
    base = count_macs_params(model, shape)
    example = torch.zeros(1, *shape)
    # Many small pruning increments; we stop each step once its target is met.
    pruner = tp.pruner.MetaPruner(model, example, importance=tp.importance.TaylorImportance(),
                                  pruning_ratio=0.95, iterative_steps=200, global_pruning=True,
                                  ignored_layers=_ignored_layers(model))
    record = [dict(step=0, macs=base[0], params=base[1])]
    done = 0
    for step in range(1, steps + 1):
        goal = base[what] * (1 - ratio * step / steps)
        # Taylor scores from this step's weights; torch-pruning narrows .grad
        # together with each weight, so one backward serves all increments.
        _accumulate_taylor_grads(model, splits, loss_fn, int(p["importance_batches"]), 32, rng)
        while count_macs_params(model, shape)[what] > goal and done < 200:
            pruner.step()
            done += 1
        model.zero_grad()
        if finetune is not None:
            finetune(model, step)
        macs, params = count_macs_params(model, shape)
        record.append(dict(step=step, macs=macs, params=params))
        print(f"prune step {step}/{steps}: {macs:,} MACs ({macs / base[0]:.0%}), "
              f"{params:,} params ({params / base[1]:.0%})")
    if count_macs_params(model, shape)[what] > base[what] * (1 - ratio) * 1.001:
        raise UserError(f"could not prune to {ratio:.0%} fewer {p['target']}; try a smaller --prune-ratio")
    return record


def train_prune(config: dict, run, splits, model: nn.Module, rng, progress=None) -> dict:
    from tinyfake.train.distill import distill_loss, load_teacher

    t = config["train"]
    p = t["prune"]
    size = int(config["data"]["size"])
    if t.get("distill", {}).get("teacher"):
        teacher, tsize = load_teacher(t["distill"]["teacher"], config)
        loss = distill_loss(teacher, tsize, float(t["distill"]["alpha"]), balanced_bce(splits.train.y))
    else:
        loss = supervised_loss(splits.train.y)
    start = time.time()
    history, best = [], [0]

    def finetune(m, step):
        out = fit(m, splits, t, loss, epochs=int(p["finetune_epochs"]), lr=p["finetune_lr"], rng=rng,
                  progress=progress, label=f"prune {step}: ", checkpoint=run.checkpoint)
        history.extend(out["history"])
        best[0] = out["best_epoch"]

    record = prune_model(model, size, splits, loss, p, rng, finetune)
    return save_run(run, config, model, splits, history, best[0], start, prune_steps=record)
