"""A training run's configuration (what `config.toml` holds) and its checks.

Light on purpose (no torch): the command line reads these defaults to build
its `--help`, and every check runs before any data is read.
"""
from __future__ import annotations

import math
from pathlib import Path

from tinyfake.errors import UserError
from tinyfake.models import MODELS, check_channels

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
