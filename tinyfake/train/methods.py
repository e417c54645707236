"""Training methods beyond plain supervised training, picked by `[train] method`.

| method            | options table     | starts from                          |
|-------------------|-------------------|--------------------------------------|
| simclr            | [train.simclr]    | random init; SimCLR, then frozen probe |
| simclr-finetune   | [train.simclr]    | as simclr, then the whole net trained |
| distill           | [train.distill]   | random init; teacher = a trained run |
| finetune          | [train.finetune]  | a trained run (`init`); a new schedule |
| prune             | [train.prune] (+ [train.distill] for a teacher) | a trained run (`init`) |
| qat               | [train.qat]       | a trained run (`init`)               |

finetune, prune and qat take the data and model of their `init` run, so they
are evaluated on exactly the split of the float model they start from.
finetune trains it on with the run's own epochs, lr and augmentation (a warm
restart of the cosine schedule).
"""
from __future__ import annotations

import numpy as np
import torch

from tinyfake.errors import UserError
from tinyfake.runs import RunDir
from tinyfake.train.config import INIT_METHODS, METHOD_GROUPS

# Which option tables each method uses.
GROUPS = {"simclr": ("simclr",), "simclr-finetune": ("simclr",), "distill": ("distill",),
          "finetune": ("finetune",), "prune": ("prune", "distill"), "qat": ("qat",)}
FINETUNE_DEFAULTS = dict(init="")


def _defaults(group: str) -> dict:
    from tinyfake.train.distill import DISTILL_DEFAULTS
    from tinyfake.train.prune import PRUNE_DEFAULTS
    from tinyfake.train.qat import QAT_DEFAULTS
    from tinyfake.train.simclr import SIMCLR_DEFAULTS
    return {"simclr": SIMCLR_DEFAULTS, "distill": DISTILL_DEFAULTS, "finetune": FINETUNE_DEFAULTS,
            "prune": PRUNE_DEFAULTS, "qat": QAT_DEFAULTS}[group]


def method_options(train: dict) -> dict:
    """`train` with each of its method's option tables complete (defaults filled,
    unknown keys refused) and tables of other methods refused."""
    method = train["method"]
    out = dict(train)
    for group in METHOD_GROUPS:
        given = out.get(group)
        if group not in GROUPS[method]:
            if given:
                raise TypeError(f"[train.{group}] options do not apply to method {method}")
            out.pop(group, None)
            continue
        defaults = _defaults(group)
        unknown = sorted(set(given or {}) - set(defaults))
        if unknown:
            raise TypeError(f"unknown {group} option(s): {', '.join(unknown)}")
        out[group] = {**defaults, **(given or {})}
    return out


def init_run_config(path: str, method: str) -> dict:
    """The config of the trained run that finetune/prune/qat start from."""
    if not path:
        raise UserError(f"--method {method} needs --init RUN_DIR (the trained run to {method})")
    return RunDir.existing(path).read_config()


def with_init_data(config: dict) -> dict:
    """For finetune/prune/qat: the config with the init run's data and model tables."""
    method = config["train"]["method"]
    init = config["train"][method]["init"]
    iconf = init_run_config(init, method)
    return {**config, "data": dict(iconf["data"]), "model": dict(iconf["model"])}


def train_with_method(config: dict, run, *, progress: bool | None = None, resume: bool = False) -> dict | None:
    """Train per `config["train"]["method"]`; writes the same run files as supervised
    training (called by tinyfake.train.train, which sets up threads and ranks)."""
    from tinyfake.train.supervised import (_check_splits, begin_training, load_trained, model_from_config,
                                           splits_from_config)

    t = config["train"]
    method = t["method"]
    if method not in GROUPS:
        raise UserError(f"unknown training method {method!r}; choose one of: supervised, {', '.join(GROUPS)}")
    config = {**config, "train": method_options(t)}
    if method in INIT_METHODS:
        config = with_init_data(config)
    torch.manual_seed(t["seed"])
    rng = np.random.default_rng(t["seed"])
    splits = splits_from_config(config, trained=method in INIT_METHODS)  # their data: the --init run's
    _check_splits(splits)

    if method in INIT_METHODS:
        model, _ = load_trained(RunDir.existing(config["train"][method]["init"]))
    else:
        model = model_from_config(config)
    config = begin_training(run, config, resume, splits)  # after --init's model is read: it may be this run

    if method in ("simclr", "simclr-finetune"):
        from tinyfake.train.simclr import train_simclr
        return train_simclr(config, run, splits, model, rng, progress)
    if method == "distill":
        from tinyfake.train.distill import train_distill
        return train_distill(config, run, splits, model, rng, progress)
    if method == "finetune":
        from tinyfake.train.loop import fit_supervised
        return fit_supervised(config, run, splits, model, rng, progress, label="finetune: ")
    if method == "prune":
        from tinyfake.train.prune import train_prune
        return train_prune(config, run, splits, model, rng, progress)
    from tinyfake.train.qat import train_qat
    return train_qat(config, run, splits, model, rng, progress)
