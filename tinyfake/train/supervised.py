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
from tinyfake.models import build_model
from tinyfake.runs import RunDir


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


def data_digest(splits: Splits) -> str:
    """SHA-256 of the faces as training sees them (pixels, labels, groups, in
    split order): equal digests, equal data and split."""
    import hashlib

    h = hashlib.sha256()
    for part in (splits.train, splits.val, splits.test):
        h.update(np.ascontiguousarray(part.x).tobytes())
        h.update(np.asarray(part.y, np.int64).tobytes())
        h.update("\n".join(map(str, part.group)).encode() + b"\0")
    return h.hexdigest()


def begin_training(run: RunDir, config: dict, resume: bool, splits: Splits) -> dict:
    """Once the data has loaded (a bad --data must not cost an earlier run its
    model): check the data against what the config says it was (a rerun, a
    resume), record in [made] what makes this run (tinyfake version, commit,
    data digest), and for a fresh run clear what an earlier one left. Every
    rank then starts together, none looking for a checkpoint before rank 0
    cleared it. Returns the config as recorded."""
    from tinyfake.provenance import maker
    from tinyfake.train.distributed import current_ranks

    digest = data_digest(splits)
    want = config.get("made", {}).get("data_sha256")
    if want is not None and want != digest:
        raise UserError(f"the data at {config['data']['source']} is not what this run was trained on "
                        f"(its faces hash to {digest[:12]}, the run's to {want[:12]}): same options on "
                        "other data make another run; put the original data back to rerun it")
    config = {**config, "made": {**maker(), "data_sha256": digest}}
    ranks = current_ranks()
    if ranks.main and not resume:
        run.begin_training(config)
    if ranks.world > 1:
        torch.distributed.barrier()
    return config


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
        config = begin_training(run, config, resume, splits)
        return fit_supervised(config, run, splits, model_from_config(config), rng, progress)
