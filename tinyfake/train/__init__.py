"""Training: `train(config, run_dir)`, and re-loading what a run trained."""
from tinyfake.train.supervised import (load_trained, make_config, model_from_config, predict,
                                       splits_from_config, train)

__all__ = ["load_trained", "make_config", "model_from_config", "predict",
           "splits_from_config", "train"]
