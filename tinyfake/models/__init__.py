"""Tiny face classifiers: every model maps float NCHW x/255 to one logit (N, 1).

P(fake) = sigmoid(logit). `MODELS` lists the architectures `build_model` knows.
"""
from __future__ import annotations

from torch import nn

from tinyfake.errors import UserError
from tinyfake.models.complexity import count_macs_params

__all__ = ["MODELS", "build_model", "count_macs_params"]


def _phinet(input_size: int, **kwargs) -> nn.Module:
    from tinyfake.models.phinet import PhiNetClassifier

    return PhiNetClassifier(input_size, **kwargs)


def _micronet(variant: str):
    def build(input_size: int, **kwargs) -> nn.Module:
        from tinyfake.models.micronet import MicroNet

        return MicroNet(input_size, variant, num_classes=1, **kwargs)
    return build


def _binary(input_size: int, **kwargs) -> nn.Module:
    from tinyfake.models.binary import BinaryNet

    return BinaryNet(input_size, **kwargs)


# arch -> (builder, default kwargs, one-line description)
MODELS: dict[str, tuple] = {
    "phinet": (_phinet,
               dict(alpha=0.25, beta=0.75, t_zero=5.0, num_layers=7, in_channels=3,
                    squeeze_excite=True, h_swish=True),
               "micromind PhiNet + global-average-pool + linear head"),
    **{f"micronet-{v}": (_micronet(v), dict(dropout=0.05),
                         f"MicroNet-{v.upper()} (ICCV 2021): micro-factorized convs, Dynamic Shift-Max")
       for v in ("m0", "m1", "m2", "m3")},
    "binary": (_binary, dict(width=16, blocks=4, channels="rgb"),
               "binary (1-bit weights and activations) ReActNet-style net, int8 stem and head"),
}

MIN_INPUT_SIZE = 32  # five stride-2 stages


def build_model(arch: str, input_size: int, **kwargs) -> nn.Module:
    """An untrained `arch` for square input_size x input_size images; kwargs
    override the arch's defaults (`MODELS[arch][1]`)."""
    if arch not in MODELS:
        raise UserError(f"unknown model {arch!r}; choose one of: {', '.join(MODELS)}")
    builder, defaults, _ = MODELS[arch]
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        raise UserError(f"model {arch} has no option(s) {', '.join(unknown)}; "
                        f"it takes {', '.join(defaults)}")
    if input_size < MIN_INPUT_SIZE:
        raise UserError(f"input size {input_size} is too small for {arch}; use >= {MIN_INPUT_SIZE}")
    return builder(input_size, **{**defaults, **kwargs})
