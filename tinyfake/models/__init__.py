"""Tiny face classifiers: every model maps float NCHW x/255 to one logit (N, 1).

P(fake) = sigmoid(logit). `MODELS` lists the architectures `build_model` knows.
Any of them takes `channels="rgb+fft+lbp"`: the model is wrapped in
`ChannelInput` (RGB + FFT magnitude + LBP, tinyfake.models.channel_input).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from tinyfake.errors import UserError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CHANNELS", "MODELS", "build_model", "check_channels", "count_macs_params"]

# Model input: RGB, or RGB + the FFT magnitude and LBP channels (ChannelInput).
CHANNELS = ("rgb", "rgb+fft+lbp")
FFT_LBP = "rgb+fft+lbp"


def __getattr__(name: str):
    # count_macs_params needs torch: loaded on first use, so `tinyfake --help` stays fast
    if name == "count_macs_params":
        from tinyfake.models.complexity import count_macs_params
        return count_macs_params
    raise AttributeError(f"module 'tinyfake.models' has no attribute {name!r}")


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
    "binary": (_binary, dict(width=16, blocks=4),
               "binary (1-bit weights and activations) ReActNet-style net, int8 stem and head"),
}

MIN_INPUT_SIZE = 32  # five stride-2 stages


def build_model(arch: str, input_size: int, **kwargs) -> nn.Module:
    """An untrained `arch` for square input_size x input_size images; kwargs
    override the arch's defaults (`MODELS[arch][1]`)."""
    if arch not in MODELS:
        raise UserError(f"unknown model {arch!r}; choose one of: {', '.join(MODELS)}")
    builder, defaults, _ = MODELS[arch]
    channels = kwargs.pop("channels", "rgb")  # every arch; older binary configs have it too
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        raise UserError(f"model {arch} has no option(s) {', '.join(unknown)}; "
                        f"it takes {', '.join(defaults)}")
    if input_size < MIN_INPUT_SIZE:
        raise UserError(f"input size {input_size} is too small for {arch}; use >= {MIN_INPUT_SIZE}")
    check_channels(channels, input_size)
    model = builder(input_size, **{**defaults, **kwargs})
    if channels == FFT_LBP:
        from tinyfake.models.channel_input import ChannelInput
        model = ChannelInput(model)
    return model


def check_channels(channels: str, input_size: int) -> None:
    """UserError unless `channels` is known and the size suits it (the FFT
    needs a power of two from 4 to 256)."""
    if channels not in CHANNELS:
        raise UserError(f"unknown input channels {channels!r}; choose one of: {', '.join(CHANNELS)}")
    if channels == FFT_LBP:
        from tinyfake.data.channels import check_fft_size
        check_fft_size(input_size)
