"""Binary detector (ReActNet/BNext style) and the integer reference of its
binary layers.

Network: int8 stem (3x3/2 conv, BN, ReLU) -> `blocks` binary blocks -> GAP ->
full-precision linear head (one logit). A binary block is
    y = PReLU(BN(BinConv3x3(x)) + shortcut(x));  z = PReLU(BN(BinConv1x1(y)) + y)
where BinConv binarizes its input with a learned per-channel threshold
(RSign: bit = x >= t_c) and its weights by sign, with a learned per-output
channel scale; both signs use a straight-through estimator. Shortcuts stay
real-valued (average-pool on stride 2, channels duplicated when they double).

The integer form the device runs (bit-packed XNOR-popcount) is defined in
tinyfake.compiler.binary.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from tinyfake.compiler.binary import words


# --- training form -------------------------------------------------------

class _SignSTE(torch.autograd.Function):
    """sign(x) with sign(0) = +1; gradient of the ApproxSign polynomial
    (ReActNet): 2 - 2|x| inside [-1, 1], 0 outside."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.clamp(2.0 - 2.0 * x.abs(), min=0.0)


class _WeightSTE(torch.autograd.Function):
    """sign(w) (sign(0) = +1) with a clipped identity gradient."""

    @staticmethod
    def forward(ctx, w):
        ctx.save_for_backward(w)
        return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))

    @staticmethod
    def backward(ctx, g):
        (w,) = ctx.saved_tensors
        return g * (w.abs() <= 1).to(g.dtype)


def binarize(x: torch.Tensor) -> torch.Tensor:
    return _SignSTE.apply(x)


class BinaryConv2d(nn.Conv2d):
    """Conv on sign(x - threshold) and sign(W), times a learned per-output scale."""

    def __init__(self, cin, cout, kernel_size, stride=1):
        super().__init__(cin, cout, kernel_size, stride, kernel_size // 2, bias=False)
        nn.init.normal_(self.weight, 0.0, 0.1)  # inside the STE window
        self.threshold = nn.Parameter(torch.zeros(cin))
        self.scale = nn.Parameter(self.weight.detach().abs().mean((1, 2, 3)).clone())

    def binary_weight(self) -> torch.Tensor:
        return _WeightSTE.apply(self.weight)

    def forward(self, x):
        xb = binarize(x - self.threshold.view(1, -1, 1, 1))
        y = nn.functional.conv2d(xb, self.binary_weight(), None, self.stride, self.padding)
        return y * self.scale.view(1, -1, 1, 1)


class BinaryBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        if cout not in (cin, 2 * cin):
            raise ValueError("a binary block keeps or doubles the channels")
        self.conv3 = BinaryConv2d(cin, cout, 3, stride)
        self.bn3 = nn.BatchNorm2d(cout)
        self.act3 = nn.PReLU(cout, init=0.25)
        self.conv1 = BinaryConv2d(cout, cout, 1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = nn.PReLU(cout, init=0.25)
        self.pool = nn.AvgPool2d(2) if stride == 2 else nn.Identity()
        self.repeat = cout // cin

    def shortcut(self, x):
        x = self.pool(x)
        return torch.cat([x] * self.repeat, 1) if self.repeat > 1 else x

    def forward(self, x):
        y = self.act3(self.bn3(self.conv3(x)) + self.shortcut(x))
        return self.act1(self.bn1(self.conv1(y)) + y)


class BinaryNet(nn.Module):
    """int8 stem -> binary blocks (widths 2w, 4w, 4w, ...; stride 2 where
    the width doubles) -> GAP -> linear (one logit)."""

    def __init__(self, input_size: int, width: int = 16, blocks: int = 4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        layers, c = [], width
        for i in range(blocks):
            cout = c * 2 if i in (0, 1) else c
            layers.append(BinaryBlock(c, cout, 2 if cout != c else 1))
            c = cout
        self.blocks = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, 1)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


# --- storage ---------------------------------------------------------------

def weight_bytes(model: nn.Module) -> dict:
    """Flash bytes of the weights (an estimate of what tinyfake's compiler
    emits): `int8` = the same architecture with every conv/linear weight in
    int8 (1 byte each) plus int32 bias, multiplier and shift per output
    channel; `binary` = binary convs bit-packed ([O][KH][KW][words] uint32)
    with an int8 threshold per input channel, int32 bias and a 3-word
    requantization per output channel and a popcount byte per (output
    channel, tap), everything else as int8."""
    int8 = binary = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            per_out = 12  # int32 bias + int32 multiplier + int32 shift
            dense = m.weight.numel() + m.weight.shape[0] * per_out
            int8 += dense
            if isinstance(m, BinaryConv2d):
                o, c, kh, kw = m.weight.shape
                binary += o * kh * kw * words(c) * 4 + c + 16 * o + (o * kh * kw if kh > 1 else 0)
            else:
                binary += dense
        elif isinstance(m, nn.PReLU):  # int8 alpha per channel + its multiplier
            int8 += m.weight.numel() * 5
            binary += m.weight.numel() * 5
    return {"int8": int8, "binary": binary, "reduction": int8 / binary if binary else math.nan}
