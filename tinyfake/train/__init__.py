"""Training: `train(config, run_dir)`, and re-loading what a run trained.

`make_config` is light (tinyfake.train.config); the rest imports torch, so it
loads on first use and `tinyfake --help` stays fast.
"""
from tinyfake.train.config import make_config

_SUPERVISED = ("load_trained", "model_from_config", "predict", "splits_from_config", "train")
__all__ = ["make_config", *_SUPERVISED]


def __getattr__(name: str):
    if name in _SUPERVISED:
        from tinyfake.train import supervised
        return getattr(supervised, name)
    raise AttributeError(f"module 'tinyfake.train' has no attribute {name!r}")
