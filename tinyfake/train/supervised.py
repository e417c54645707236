"""Supervised training of a one-logit face classifier.

AdamW + cosine schedule, class-balanced BCE, mild augmentation, early stopping
on validation ROC-AUC with the best epoch's weights restored. Everything
(split, init, batch order, augmentation) follows one seed.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tinyfake.data import Splits, load_dataset, split_dataset
from tinyfake.data.tensors import to_float_nchw
from tinyfake.errors import UserError
from tinyfake.metrics import auc_interval, binary_metrics
from tinyfake.models import MODELS, build_model, check_channels
from tinyfake.runs import RunDir

# Sized for the embedded demo set: about a minute on two CPU cores.
# augment: a policy of tinyfake.data.augment (older runs hold a bool);
# workers: DataLoader processes that augment batches (0 = in the training
# process), which does not change the result.
# device: auto (CUDA when there is one), cpu, cuda, cuda:N; like workers, it
# does not change what is trained (to float rounding). batch_size is per
# process: a torchrun job of N processes trains with global batch N x it.
TRAIN_DEFAULTS = dict(epochs=60, batch_size=16, lr=5e-3, weight_decay=1e-2, patience=20,
                      seed=0, augment="mild", workers=0, device="auto", method="supervised")
# --method values; all but supervised live in tinyfake.train.methods and keep
# their options in a [train.<group>] table (simclr, distill, prune, qat).
METHODS = ("supervised", "simclr", "simclr-finetune", "distill", "finetune", "prune", "qat")
METHOD_GROUPS = ("simclr", "distill", "finetune", "prune", "qat")
# Methods that start from a trained run (`init`) and take its data and model.
INIT_METHODS = ("finetune", "prune", "qat")
FRACTIONS = (0.7, 0.15, 0.15)


MAX_INPUT_SIZE = 512  # an MCU detector's input; larger sizes only exhaust memory while decoding


def check_train_options(t: dict, size: int, model_kwargs: dict) -> None:
    """One UserError line for an option no training run can use (before any data is read)."""
    from tinyfake.data.augment import policy_name

    def need(ok: bool, what: str, got) -> None:
        if not ok:
            raise UserError(f"{what}, got {got}")

    def integer(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    need(integer(size) and 8 <= size <= MAX_INPUT_SIZE, f"--size must be an integer from 8 to {MAX_INPUT_SIZE}", size)
    need(integer(t["epochs"]) and t["epochs"] >= 1, "--epochs must be at least 1", t["epochs"])
    need(integer(t["batch_size"]) and t["batch_size"] >= 2,
         "--batch-size must be at least 2 (BatchNorm needs two faces per batch)", t["batch_size"])
    need(integer(t["patience"]) and t["patience"] >= 1, "--patience must be at least 1", t["patience"])
    need(t["lr"] > 0 and math.isfinite(t["lr"]), "--lr must be a positive number", t["lr"])
    need(t["weight_decay"] >= 0, "--weight-decay must be >= 0", t["weight_decay"])
    need(integer(t["workers"]) and t["workers"] >= 0, "--workers must be an integer >= 0", t["workers"])
    from tinyfake.train.distributed import resolve_device
    resolve_device(t["device"])  # raises on a device this machine does not have
    policy_name(t["augment"])  # raises on an unknown policy
    if "alpha" in model_kwargs:  # PhiNet's width: 0 leaves a net of a few hundred weights
        a = model_kwargs["alpha"]
        need(0.05 <= a <= 4, "--alpha (PhiNet width) must be from 0.05 to 4", a)


def make_config(source: str | None = None, size: int = 64, arch: str = "phinet", *,
                seed: int = 0, fractions=FRACTIONS, skip_corrupt=False, detect_faces=False,
                model_kwargs: dict | None = None, **train) -> dict:
    """A complete run configuration (what `config.toml` holds)."""
    if arch not in MODELS:
        raise UserError(f"unknown model {arch!r}; choose one of: {', '.join(MODELS)}")
    unknown = sorted(set(train) - set(TRAIN_DEFAULTS) - set(METHOD_GROUPS))
    if unknown:
        raise TypeError(f"unknown training option(s): {', '.join(unknown)}")
    if train.get("method", "supervised") not in METHODS:
        raise UserError(f"unknown training method {train['method']!r}; choose one of: {', '.join(METHODS)}")
    if train.get("method", "supervised") != "supervised":
        from tinyfake.train.methods import method_options  # fills [train.<group>] defaults
        train = method_options(train)
    check_train_options({**TRAIN_DEFAULTS, **train}, int(size), model_kwargs or {})
    if source in (None, "default"):
        source = "default"
    else:  # absolute, so later stages find it from any working directory
        source = str(Path(source).expanduser().resolve())
    model = {**MODELS[arch][1], **(model_kwargs or {})}
    model.setdefault("channels", "rgb")  # input channels: rgb or rgb+fft+lbp (every stage reads it)
    check_channels(model["channels"], int(size))
    return {
        "data": dict(source=source, size=int(size), seed=int(seed), fractions=list(fractions),
                     skip_corrupt=bool(skip_corrupt), detect_faces=bool(detect_faces)),
        "model": {"arch": arch, **model},
        "train": {**TRAIN_DEFAULTS, "seed": int(seed), **train},
    }


def splits_from_config(config: dict, *, trained: bool = True) -> Splits:
    """The exact train/val/test split a run was (`trained`) or will be trained with."""
    d = config["data"]
    if trained and d["source"] != "default" and not Path(d["source"]).exists():
        raise UserError(f"the run's data {d['source']} is gone (moved or deleted); put it back there "
                        "to recreate the run's split, or give other data with --data")
    ds = load_dataset(d["source"], int(d["size"]), skip_corrupt=d.get("skip_corrupt", False),
                      detect_faces=d.get("detect_faces", False))
    return split_dataset(ds, seed=int(d["seed"]), fractions=tuple(d["fractions"]))


def model_from_config(config: dict) -> nn.Module:
    m = dict(config["model"])
    return build_model(m.pop("arch"), int(config["data"]["size"]), **m)


def load_trained(run) -> tuple[nn.Module, dict]:
    """(model in eval mode with the trained weights, config) of a run directory."""
    run = run if isinstance(run, RunDir) else RunDir.existing(run)
    config = run.read_config()
    run.require_trained()
    model = model_from_config(config)
    try:
        state = torch.load(run.model_pt, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a zip, not a state dict: all "retrain"
        raise UserError(f"{run.model_pt} is not a readable model ({type(exc).__name__}); "
                        f"it may be truncated: retrain the run with `tinyfake train`") from None
    mine = model.state_dict()
    if state.keys() == mine.keys() and any(state[k].shape != mine[k].shape for k in state):
        from tinyfake.train.prune import fit_to_state_dict  # a channel-pruned run: narrower layers
        fit_to_state_dict(model, state)
    else:
        model.load_state_dict(state)
    return model.eval(), config


@torch.no_grad()
def predict(model: nn.Module, x_uint8: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """P(fake) for uint8 NHWC images (model switched to eval mode), on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    out = [torch.sigmoid(model(torch.from_numpy(to_float_nchw(x_uint8[i:i + batch_size])).to(device)))
           .float().cpu() for i in range(0, len(x_uint8), batch_size)]
    return torch.cat(out).numpy().ravel() if out else np.zeros(0, np.float32)


def _check_splits(splits: Splits) -> None:
    for name in ("train", "val"):
        part = getattr(splits, name)
        counts = part.counts()
        if min(counts.values()) == 0:
            raise UserError(f"the {name} split has {counts['real']} real and {counts['fake']} fake "
                            "faces; a detector needs both: use a larger dataset or other fractions")


def _json_safe(obj):
    """NaN -> null (JSON has no NaN); numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if math.isnan(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _evaluate(model, part, loss_fn, interval: bool = False, ranks=None) -> dict:
    """Metrics and loss on one split; with `interval`, the AUC's 95% group-bootstrap
    interval. With `ranks` (a torchrun job), each rank scores its shard."""
    if ranks is None or ranks.world == 1:
        scores = predict(model, part.x)
    else:
        from tinyfake.train.distributed import gather_shards
        mine = torch.from_numpy(predict(model, ranks.shard(part.x))).to(next(model.parameters()).device)
        scores = gather_shards(mine, len(part.x), ranks).cpu().numpy()
    s = torch.from_numpy(np.clip(scores, 1e-7, 1 - 1e-7))
    loss = float(nn.functional.binary_cross_entropy(s, torch.from_numpy(part.y).float()))
    out = {**binary_metrics(part.y, scores), "loss": loss}
    if interval:
        out["auc_ci95"] = auc_interval(part.y, scores, part.group)
    return out


def begin_training(run: RunDir, config: dict, resume: bool) -> None:
    """Once the data has loaded (a bad --data must not cost an earlier run its
    model): a fresh run clears what an earlier one left; every rank then
    starts together, none looking for a checkpoint before rank 0 cleared it."""
    from tinyfake.train.distributed import current_ranks

    ranks = current_ranks()
    if ranks.main and not resume:
        run.begin_training(config)
    if ranks.world > 1:
        torch.distributed.barrier()


# Methods whose training `--resume` continues: one fit() stage. simclr
# (pre-training, probe, fine-tuning) and prune (steps that reshape the net)
# start again from the beginning.
RESUMABLE = ("supervised", "distill", "finetune", "qat")


def train(config: dict, run_dir, *, threads: int | None = None, progress: bool | None = None,
          resume: bool = False) -> dict | None:
    """Train per `config`, write config.toml, model.pt, metrics.json into
    `run_dir` (RunDir or path) and return the metrics dict (None on the
    ranks of a torchrun job that do not write). `resume`: continue the run's
    checkpoint.pt (tinyfake.train.loop.fit)."""
    from tinyfake.train.distributed import job

    run = run_dir if isinstance(run_dir, RunDir) else RunDir(Path(run_dir))
    t = config["train"]
    method = t.get("method", "supervised")
    if resume and method not in RESUMABLE:
        raise UserError(f"--resume continues {', '.join(RESUMABLE)} runs; a {method} run "
                        "starts again: train it without --resume")
    if resume and not run.checkpoint.exists():
        raise UserError(f"{run.root} has no checkpoint.pt to resume from"
                        + (" (it finished: model.pt is there)" if run.model_pt.exists() else ""))
    with job(t.get("device", "auto")) as ranks:
        torch.set_num_threads(threads or max(1, min(4, (os.cpu_count() or 1) // ranks.local_world)))
        if method != "supervised":
            from tinyfake.train.methods import train_with_method
            return train_with_method(config, run, progress=progress, resume=resume)
        torch.manual_seed(t["seed"])
        rng = np.random.default_rng(t["seed"])

        from tinyfake.train.loop import fit_supervised

        splits = splits_from_config(config, trained=False)
        _check_splits(splits)
        begin_training(run, config, resume)
        return fit_supervised(config, run, splits, model_from_config(config), rng, progress)
