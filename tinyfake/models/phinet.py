"""PhiNet (micromind) backbone with a one-logit head.

micromind's package `__init__` imports its training framework (accelerate,
loguru, torchvision) which tinyfake does not need or install; the network
itself is the single module `micromind/networks/phinet.py` (torch +
torchinfo). We load that file directly, so the model is micromind's own code
and nothing is stubbed.
"""
from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

import torch
from torch import nn

from tinyfake.errors import UserError


@functools.lru_cache(maxsize=1)
def micromind_phinet():
    """micromind's `networks/phinet.py` module, loaded without `micromind/__init__`."""
    name = "micromind.networks.phinet"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec("micromind")  # locates the package, runs nothing
    if spec is None or not spec.submodule_search_locations:
        raise UserError("micromind is not installed: `pip install --no-deps micromind==0.2.1` "
                        "(its own dependencies would replace torch), or run scripts/setup.sh")
    path = Path(list(spec.submodule_search_locations)[0]) / "networks" / "phinet.py"
    mod_spec = importlib.util.spec_from_file_location("tinyfake.models._micromind_phinet", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module


class PhiNetClassifier(nn.Module):
    """PhiNet features -> global average pool -> linear -> one logit (N, 1)."""

    def __init__(self, input_size: int, alpha=0.25, beta=0.75, t_zero=5.0, num_layers=7,
                 in_channels=3, squeeze_excite=True, h_swish=True, bn_momentum=0.1):
        super().__init__()
        phinet = micromind_phinet()
        self.backbone = phinet.PhiNet(
            (in_channels, input_size, input_size), num_layers=num_layers, alpha=alpha,
            beta=beta, t_zero=t_zero, include_top=False,
            squeeze_excite=squeeze_excite, h_swish=h_swish)
        # micromind writes momentum in Keras's sense (0.999 = keep the old
        # statistics); in PyTorch that means "use the last batch", which makes
        # eval-mode outputs jump from batch to batch.
        for m in self.backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = bn_momentum
        self.backbone.eval()  # probe the feature width without touching BN statistics
        with torch.no_grad():
            features = self.backbone(torch.zeros(1, in_channels, input_size, input_size)).shape[1]
        self.backbone.train()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.backbone(x)), 1))
