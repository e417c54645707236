"""Parameters and multiply-accumulates of one inference, counted with hooks.

MACs are those of convolutions (any groups, so depthwise too) and linear
layers: what the int8 kernels multiply. BatchNorm folds into the preceding
convolution at export, and activations, adds, pooling and elementwise products
are not multiply-accumulates, so they count 0. Works for any nn.Module built
from standard layers (subclasses of Conv/Linear included). A custom module
whose own arithmetic has multiplies (e.g. MicroNet's Dynamic Shift-Max)
declares them with a method `macs(input, output) -> int` per sample.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd


def _layer_macs(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(module, _ConvNd):
        k = math.prod(module.kernel_size)
        if module.transposed:  # every input element meets out/groups * k weights
            return inp.numel() * (module.out_channels // module.groups) * k
        return out.numel() * (module.in_channels // module.groups) * k
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    if isinstance(module, nn.Bilinear):
        return out.numel() * module.in1_features * module.in2_features
    if callable(getattr(module, "macs", None)):
        return int(module.macs(inp, out)) * inp.shape[0]
    return 0


def count_macs_params(model: nn.Module, input_shape) -> tuple[int, int]:
    """(MACs per sample, number of parameters) for input (C,H,W) or (N,C,H,W)."""
    shape = tuple(input_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    total = [0]

    def hook(module, inputs, output):
        total[0] += _layer_macs(module, inputs[0], output)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (_ConvNd, nn.Linear, nn.Bilinear))
               or callable(getattr(m, "macs", None))]
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters(), None)
        device = param.device if param is not None else "cpu"
        with torch.no_grad():
            model(torch.zeros(shape, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    return total[0] // shape[0], params
