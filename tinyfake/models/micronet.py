"""MicroNet M0-M3 (Li et al., "MicroNet: Improving Image Recognition with
Extremely Low FLOPs", ICCV 2021) with a one-logit detector head.

Building blocks, as in the paper:
- micro-factorized depthwise convolution: a k x 1 depthwise conv followed by
  a 1 x k depthwise conv (each may multiply the channels);
- micro-factorized pointwise convolution: a grouped 1x1 conv, a channel
  shuffle, and another grouped 1x1 conv;
- Dynamic Shift-Max: a squeeze-excite-like branch (GAP -> FC -> ReLU -> FC ->
  h-sigmoid) produces per-channel coefficients that mix each channel with a
  circularly shifted channel (next group, next channel in the group); with
  two branches it takes the max of two such mixtures;
- Micro-Blocks A (depthwise expands, one grouped pointwise compresses),
  B and C (grouped pointwise expands, factorized depthwise, grouped pointwise
  compresses), and a last block that only expands.

The layer tables are the published configurations (paper Table 1/Appendix;
same numbers as the authors' release). At 224x224 with a 1000-class head the
parameter and MAC counts match the paper (see tests/test_micronet.py).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class Row(NamedTuple):
    """One Micro-Block: stride, output channels, kernel, channel expansions
    (depthwise c1, then pointwise/depthwise c2), groups of the expanding 1x1
    (g1) and of its shuffle/shift-max (g2), groups of the compressing 1x1 (g3)
    and its shuffle/shift-max (g4); y1/y2/y3 pick the activation after each of
    the three convs (0 = ReLU6 or none, 1 = one-branch, 2 = two-branch
    Dynamic Shift-Max); r scales the shift-max reduction."""
    s: int
    c: int
    k: int
    c1: int
    c2: int
    g1: int
    g2: int
    g3: int
    g4: int
    y1: int
    y2: int
    y3: int
    r: int


def _rows(*rows):
    return [Row(*r) for r in rows]


# variant -> stem groups (a, b): 3 -> a (k x 1) -> a*b (1 x k); head width;
# reduction; initial shift-max coefficients (a1/a2, b1/b2); layer table.
CONFIGS = {
    "m0": dict(stem=(2, 2), head=640, reduction=8, init_a=(1.0, 1.0), init_b=(0.0, 0.0), rows=_rows(
        (2, 8, 3, 2, 2, 0, 4, 2, 2, 2, 0, 1, 1),
        (2, 12, 3, 2, 2, 0, 8, 4, 4, 2, 2, 1, 1),
        (2, 16, 5, 2, 2, 0, 12, 4, 4, 2, 2, 1, 1),
        (1, 32, 5, 1, 4, 4, 4, 4, 4, 2, 2, 1, 1),
        (2, 64, 5, 1, 4, 8, 8, 8, 8, 2, 2, 1, 1),
        (1, 96, 3, 1, 4, 8, 8, 8, 8, 2, 2, 1, 2),
        (1, 384, 3, 1, 4, 12, 12, 0, 0, 2, 2, 1, 2))),
    "m1": dict(stem=(3, 2), head=960, reduction=8, init_a=(1.0, 1.0), init_b=(0.0, 0.0), rows=_rows(
        (2, 8, 3, 2, 2, 0, 6, 2, 2, 2, 0, 1, 1),
        (2, 16, 3, 2, 2, 0, 8, 4, 4, 2, 2, 1, 1),
        (2, 16, 5, 2, 2, 0, 16, 4, 4, 2, 2, 1, 1),
        (1, 32, 5, 1, 6, 4, 4, 4, 4, 2, 2, 1, 1),
        (2, 64, 5, 1, 6, 8, 8, 8, 8, 2, 2, 1, 1),
        (1, 96, 3, 1, 6, 8, 8, 8, 8, 2, 2, 1, 2),
        (1, 576, 3, 1, 6, 12, 12, 0, 0, 2, 2, 1, 2))),
    "m2": dict(stem=(4, 2), head=1024, reduction=8, init_a=(1.0, 1.0), init_b=(0.0, 0.0), rows=_rows(
        (2, 12, 3, 2, 2, 0, 8, 4, 4, 2, 0, 1, 1),
        (2, 16, 3, 2, 2, 0, 12, 4, 4, 2, 2, 1, 1),
        (1, 24, 3, 2, 2, 0, 16, 4, 4, 2, 2, 1, 1),
        (2, 32, 5, 1, 6, 6, 6, 4, 4, 2, 2, 1, 1),
        (1, 32, 5, 1, 6, 8, 8, 4, 4, 2, 2, 1, 2),
        (1, 64, 5, 1, 6, 8, 8, 8, 8, 2, 2, 1, 2),
        (2, 96, 5, 1, 6, 8, 8, 8, 8, 2, 2, 1, 2),
        (1, 128, 3, 1, 6, 12, 12, 8, 8, 2, 2, 1, 2),
        (1, 768, 3, 1, 6, 16, 16, 0, 0, 2, 2, 1, 2))),
    "m3": dict(stem=(4, 3), head=1024, reduction=8, init_a=(1.0, 0.5), init_b=(0.0, 0.5), rows=_rows(
        (2, 16, 3, 2, 2, 0, 12, 4, 4, 0, 2, 0, 1),
        (2, 24, 3, 2, 2, 0, 16, 4, 4, 0, 2, 0, 1),
        (1, 24, 3, 2, 2, 0, 24, 4, 4, 0, 2, 0, 1),
        (2, 32, 5, 1, 6, 6, 6, 4, 4, 0, 2, 0, 1),
        (1, 32, 5, 1, 6, 8, 8, 4, 4, 0, 2, 0, 2),
        (1, 64, 5, 1, 6, 8, 8, 8, 8, 0, 2, 0, 2),
        (1, 80, 5, 1, 6, 8, 8, 8, 8, 0, 2, 0, 2),
        (1, 80, 5, 1, 6, 10, 10, 8, 8, 0, 2, 0, 2),
        (2, 120, 5, 1, 6, 10, 10, 10, 10, 0, 2, 0, 2),
        (1, 120, 5, 1, 6, 12, 12, 10, 10, 0, 2, 0, 2),
        (1, 144, 3, 1, 6, 12, 12, 12, 12, 0, 2, 0, 2),
        (1, 864, 3, 1, 6, 12, 12, 0, 0, 0, 2, 0, 2))),
}


def _round4(v: float) -> int:
    """Nearest multiple of 4 (at least 4), never more than 10% below v."""
    r = max(4, int(v + 2) // 4 * 4)
    return r + 4 if r < 0.9 * v else r


class HSigmoid(nn.Module):
    def forward(self, x):
        return nn.functional.relu6(x + 3.0) / 6.0


class ChannelShuffle(nn.Module):
    """(g groups of c/g channels) -> (c/g groups of g channels): output channel
    j*g + i is input channel i*(c/g) + j. Applied as a fixed channel gather
    (exports as one Gather, no 5-D reshape/transpose)."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        c = x.shape[1]
        if self.groups in (1, c):
            return x
        perm = torch.arange(c, device=x.device).view(self.groups, c // self.groups).t().reshape(-1)
        return x.index_select(1, perm)


def shift_index(channels: int, groups: int) -> torch.Tensor:
    """Channel i = (group gi, member ci) reads ((gi+1) mod G, (ci+1) mod C/G)."""
    gc = channels // groups
    i = torch.arange(channels)
    return ((i // gc + 1) % groups) * gc + (i % gc + 1) % gc


class DynamicShiftMax(nn.Module):
    """y = max_j (a_j * x + b_j * shift(x)) over 1 or 2 branches, with a_j, b_j
    per channel from GAP -> FC -> ReLU -> FC -> h-sigmoid, mapped to
    [-act_max, act_max] around (init_a, init_b)."""

    def __init__(self, channels: int, reduction: int, groups: int, branches: int,
                 init_a=(1.0, 0.0), init_b=(0.0, 0.0), act_max: float = 2.0):
        super().__init__()
        if channels % groups:
            raise ValueError(f"{channels} channels do not split into {groups} groups")
        self.branches = branches
        self.scale = 2.0 * act_max
        squeeze = _round4(channels // reduction)
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, 2 * branches * channels)
        self.register_buffer("init", torch.tensor(
            [init_a[0], init_b[0], init_a[1], init_b[1]][:2 * branches]).repeat_interleave(channels))
        self.register_buffer("index", shift_index(channels, groups), persistent=False)

    def forward(self, x):
        b, c = x.shape[:2]
        y = torch.relu(self.fc1(x.mean((2, 3))))
        coef = (HSigmoid()(self.fc2(y)) - 0.5) * self.scale + self.init
        a1, b1, *rest = [coef[:, i * c:(i + 1) * c].reshape(b, c, 1, 1)
                         for i in range(2 * self.branches)]
        shifted = x.index_select(1, self.index)
        out = x * a1 + shifted * b1
        if self.branches == 2:
            out = torch.maximum(out, x * rest[0] + shifted * rest[1])
        return out

    def macs(self, inp: torch.Tensor, out: torch.Tensor) -> int:
        """Elementwise multiplies of the mixture (the FCs are counted as Linear)."""
        return 2 * self.branches * out[0].numel()


def _bn_conv(cin, cout, kernel, stride=(1, 1), groups=1) -> list[nn.Module]:
    kh, kw = kernel
    sh, sw = stride
    return [nn.Conv2d(cin, cout, (kh, kw), (sh, sw), (kh // 2, kw // 2), groups=groups, bias=False),
            nn.BatchNorm2d(cout)]


def factorized_depthwise(cin: int, e1: int, e2: int, k: int, stride: int) -> list[nn.Module]:
    """k x 1 depthwise (x e1 channels) then 1 x k depthwise (x e2 channels)."""
    return (_bn_conv(cin, cin * e1, (k, 1), (stride, 1), groups=cin)
            + _bn_conv(cin * e1, cin * e1 * e2, (1, k), (1, stride), groups=cin * e1))


def grouped_pointwise(cin: int, cout: int, groups: int) -> list[nn.Module]:
    return _bn_conv(cin, cout, (1, 1), groups=groups)


class MicroBlock(nn.Module):
    """Micro-Block A (g1 == 0), B/C (g4 != 0) or the last expanding block (g4 == 0)."""

    def __init__(self, cin: int, row: Row, reduction: int, init_a, init_b):
        super().__init__()
        r = row
        red = reduction * r.r
        hidden = cin * r.c1 * r.c2
        self.residual = r.s == 1 and cin == r.c

        def act(channels, y, groups, reduce, a=init_a, b=init_b):
            if y == 0:
                return nn.ReLU6()
            return DynamicShiftMax(channels, reduce, groups, y, a, b)

        def out_act(channels, groups, reduce):
            return DynamicShiftMax(channels, reduce, groups, 1, (1.0, 0.0), (0.0, 0.0))

        layers: list[nn.Module] = []
        if r.g1 == 0:  # A: depthwise expands, grouped pointwise compresses
            layers += factorized_depthwise(cin, r.c1, r.c2, r.k, r.s)
            layers += [act(hidden, r.y2, r.g2, red), ChannelShuffle(r.g2)]
            if r.y2:
                layers.append(ChannelShuffle(hidden // 2))
            layers += grouped_pointwise(hidden, r.c, r.g3)
            if r.y3:
                layers.append(out_act(r.c, r.g4, red // 2))
            layers.append(ChannelShuffle(r.g4))
            if r.y3 and r.c % 2 == 0:
                layers.append(ChannelShuffle(r.c // 2))
        elif r.g4 == 0:  # last: grouped pointwise expands only
            layers += grouped_pointwise(cin, hidden, r.g1)
            if r.y3:
                layers.append(out_act(hidden, r.g2, red))
        else:  # B / C: expand, factorized depthwise, compress
            layers += grouped_pointwise(cin, hidden, r.g1)
            layers += [act(hidden, r.y1, r.g2, red), ChannelShuffle(r.g2)]
            layers += factorized_depthwise(hidden, 1, 1, r.k, r.s)
            layers.append(act(hidden, r.y2, hidden // r.g2 if r.g2 != 1 else 1, red))
            if r.y1 and r.y2:
                layers.append(ChannelShuffle(hidden // 4))
            elif r.y1 or r.y2:
                layers.append(ChannelShuffle(hidden // 2))
            layers += grouped_pointwise(hidden, r.c, r.g3)
            if r.y3:
                layers.append(out_act(r.c, r.g4, red // 2 if r.c < hidden else red))
            layers.append(ChannelShuffle(r.g4))
            if r.y3:
                layers.append(ChannelShuffle(r.c // 2))
        self.layers = nn.Sequential(*[m for m in layers
                                      if not (isinstance(m, ChannelShuffle) and m.groups == 1)])

    def forward(self, x):
        out = self.layers(x)
        return out + x if self.residual else out


class MicroNet(nn.Module):
    """MicroNet backbone + ReLU6/GAP/h-swish + FC(head)-BN-h-swish + FC(num_classes).

    num_classes=1 is the detector (one logit); 1000 is the ImageNet form the
    paper counts."""

    def __init__(self, input_size: int, variant: str = "m0", num_classes: int = 1,
                 dropout: float = 0.05, in_channels: int = 3):
        super().__init__()
        if variant not in CONFIGS:
            raise ValueError(f"unknown MicroNet variant {variant!r}")
        cfg = CONFIGS[variant]
        self.input_size = input_size   # export_form needs the spatial sizes
        a, b = cfg["stem"]
        stem = a * b
        self.stem = nn.Sequential(
            *_bn_conv(in_channels, a, (3, 1), (2, 1)),
            *_bn_conv(a, stem, (1, 3), (1, 2), groups=a),
            ChannelShuffle(a), nn.ReLU6())
        blocks, cin = [], stem
        for row in cfg["rows"]:
            blocks.append(MicroBlock(cin, row, cfg["reduction"], cfg["init_a"], cfg["init_b"]))
            cin = row.c if row.g4 else cin * row.c1 * row.c2
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Hardswish())
        self.head = nn.Sequential(nn.Linear(cin, cfg["head"]), nn.BatchNorm1d(cfg["head"]),
                                  nn.Hardswish(), nn.Dropout(dropout))
        self.fc = nn.Linear(cfg["head"], num_classes)
        self.features = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.fc(self.head(self.pool(self.blocks(self.stem(x)))))


# ---------------------------------------------------------------------------
# Export form: the same function written with operators that convert to int8
# TFLite cleanly (onnx2tf) and that tinyfake's compiler runs.
#
# - Conv + BatchNorm pairs are folded (eval-mode BN is an affine map).
# - Grouped convolutions stay grouped (one grouped CONV_2D in TFLite, run by
#   the compiler's grouped kernels); with one input channel per group they
#   are depthwise.
# - Consecutive channel shuffles are composed into one permutation; a
#   permutation followed by a dense conv is folded into that conv's input
#   channels (W'[:, p] = W), and so is one followed by a grouped conv when it
#   keeps every input channel inside its group (then it only reorders each
#   group's weights). The rest stay a fixed channel gather (GATHER): a
#   shuffle that mixes the groups cannot be folded into a grouped conv.
# - Dynamic Shift-Max: GAP keeps (N, C, 1, 1); the two FCs are 1x1 convs;
#   each coefficient gets its own 1x1 conv (no Slice/Reshape) with the
#   h-sigmoid affine folded in: (relu6(z+3)/6 - 0.5)*s + init
#   = clamp(z*s/6 + init, init - s/2, init + s/2).
# - The head's Linear + BatchNorm1d is one Linear.
# The parameter/MAC counts of the paper are those of MicroNet itself, and the
# export form's convolutions have the same weights and MACs.
# ---------------------------------------------------------------------------


def _fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    w = conv.weight * scale.view(-1, 1, 1, 1)
    b = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        b = b + conv.bias * scale
    return w.detach().clone(), b.detach().clone()


def _fold_permutation(conv: nn.Conv2d, p: torch.Tensor) -> bool:
    """Make conv(x) equal the old conv(x[:, p]) by reordering its input
    weights, where that is possible: any permutation for a dense conv; for a
    grouped conv only one that maps each group's channels into the same group
    (a grouped conv reads fixed channel blocks). False: conv is unchanged."""
    groups, cin = conv.groups, conv.in_channels
    if groups == 1:
        w = torch.zeros_like(conv.weight)
        w[:, p] = conv.weight.data
        conv.weight.data = w
        return True
    if groups == cin or not torch.equal(torch.sort(p).values, torch.arange(cin)):
        return False
    gi, go = cin // groups, conv.out_channels // groups
    local = p.view(groups, gi) - torch.arange(groups).view(groups, 1) * gi
    if local.min() < 0 or local.max() >= gi:
        return False   # some channel comes from another group
    w = torch.zeros_like(conv.weight)
    for g in range(groups):
        w[g * go:(g + 1) * go, local[g]] = conv.weight.data[g * go:(g + 1) * go]
    conv.weight.data = w
    return True


class ExportGather(nn.Module):
    """out[:, j] = x[:, index[j]] (a fixed channel permutation)."""

    def __init__(self, index: torch.Tensor):
        super().__init__()
        # int32: TFLite Micro's GATHER rejects int64 positions
        self.register_buffer("index", index.clone().to(torch.int32))

    def forward(self, x):
        return x.index_select(1, self.index)


class ExportDSM(nn.Module):
    """DynamicShiftMax with 1x1-conv coefficient branches and folded h-sigmoid."""

    def __init__(self, dsm: DynamicShiftMax):
        super().__init__()
        c = dsm.index.numel()
        s = dsm.scale
        self.branches = dsm.branches
        self.fc1 = nn.Conv2d(c, dsm.fc1.out_features, 1)
        self.fc1.weight.data = dsm.fc1.weight.detach().clone().view(*dsm.fc1.weight.shape, 1, 1)
        self.fc1.bias.data = dsm.fc1.bias.detach().clone()
        self.coef = nn.ModuleList()
        self.bounds = []
        w2, b2 = dsm.fc2.weight.detach(), dsm.fc2.bias.detach()
        for k in range(2 * dsm.branches):
            init = float(dsm.init[k * c])
            conv = nn.Conv2d(dsm.fc1.out_features, c, 1)
            conv.weight.data = (w2[k * c:(k + 1) * c] * (s / 6)).clone().view(c, -1, 1, 1)
            conv.bias.data = (b2[k * c:(k + 1) * c] * (s / 6) + init).clone()
            self.coef.append(conv)
            self.bounds.append((init - s / 2, init + s / 2))
        self.shift = ExportGather(dsm.index)

    def permute_channels(self, p: torch.Tensor) -> None:
        """Act on x[:, p] instead of x, giving the old output [:, p] (every
        per-channel part follows its channel; the shift is conjugated)."""
        self.fc1.weight.data = self.fc1.weight.data[:, p].clone()
        for conv in self.coef:
            conv.weight.data = conv.weight.data[p].clone()
            conv.bias.data = conv.bias.data[p].clone()
        idx = self.shift.index.long()
        self.shift.index = torch.argsort(p)[idx[p]].to(torch.int32)

    def forward(self, x):
        y = torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))
        coef = [conv(y).clamp(lo, hi) for conv, (lo, hi) in zip(self.coef, self.bounds)]
        shifted = self.shift(x)
        out = x * coef[0] + shifted * coef[1]
        if self.branches == 2:
            out = torch.maximum(out, x * coef[2] + shifted * coef[3])
        return out


def _export_layers(layers) -> list[nn.Module]:
    """Rewrite a list of training-form layers (Conv2d, BN, ChannelShuffle, DSM,
    ReLU6) into export-form modules."""
    items: list = []   # ("conv", conv), ("perm", index), ("mod", module)
    seq = list(layers)
    i = 0
    while i < len(seq):
        m = seq[i]
        if isinstance(m, nn.Conv2d):
            bn = seq[i + 1]
            assert isinstance(bn, nn.BatchNorm2d)
            w, b = _fold_bn(m, bn)
            conv = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                             groups=m.groups, bias=True)
            conv.weight.data, conv.bias.data = w, b
            items.append(("conv", conv))
            i += 2
            continue
        if isinstance(m, ChannelShuffle):
            items.append(("perm", None, m))
        elif isinstance(m, DynamicShiftMax):
            items.append(("mod", ExportDSM(m)))
        else:
            items.append(("mod", m))
        i += 1
    # shuffles -> permutation indices (they need the channel count)
    out: list = []
    channels = None
    for it in items:
        if it[0] == "conv":
            channels = it[1].out_channels
            out.append(it)
        elif it[0] == "perm":
            sh = it[2]
            c = channels
            if sh.groups in (1, c):
                continue
            p = torch.arange(c).view(sh.groups, c // sh.groups).t().reshape(-1)
            if out and out[-1][0] == "perm":
                out[-1] = ("perm", out[-1][1][p])   # x[q][p] = x[q[p]]
            else:
                out.append(("perm", p))
        else:
            out.append(it)
    # ReLU6 commutes with a permutation: move it next to the conv (fused there)
    for k in range(len(out) - 1):
        if out[k][0] == "perm" and out[k + 1][0] == "mod" and isinstance(out[k + 1][1], nn.ReLU6):
            out[k], out[k + 1] = out[k + 1], out[k]
    # fold a permutation into the conv that reads it (where the conv allows)
    folded: list = []
    k = 0
    while k < len(out):
        it = out[k]
        if (it[0] == "perm" and k + 1 < len(out) and out[k + 1][0] == "conv"
                and _fold_permutation(out[k + 1][1], it[1])):
            folded.append(out[k + 1])
            k += 2
            continue
        folded.append(it)
        k += 1
    return [ExportGather(it[1]) if it[0] == "perm" else it[1] for it in _sink_permutations(folded)]


def _is_depthwise1(conv: nn.Conv2d) -> bool:
    return conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def _sink_permutations(items: list) -> list:
    """Move each remaining permutation back, against the data flow, through
    Dynamic Shift-Max (which then reads permuted channels), ReLU6 and
    depthwise convs with one output per channel (their channels follow),
    composing it with permutations met on the way, until a conv that makes
    its input: a dense conv takes it into its output channels (no gather
    left); after any other conv (or its ReLU6) it stays a channel gather.
    Fewer gathers, and each one reads a conv output: onnx2tf converts that
    gather in NHWC, while one of an element-wise result goes through NCHW,
    and a grouped conv reading that NCHW tensor is mis-converted (taken for
    a depthwise conv when its group count equals the tensor's width)."""
    out: list = []
    for it in items:
        if it[0] != "perm":
            out.append(it)
            continue
        p, tail = it[1], []
        while out:
            kind, m = out[-1]
            if kind == "perm":   # x[q][p] = x[q[p]]
                p = m[p]
                out.pop()
                continue
            if kind == "mod" and isinstance(m, ExportDSM):
                m.permute_channels(p)
            elif kind == "conv" and _is_depthwise1(m):
                m.weight.data = m.weight.data[p].clone()
                m.bias.data = m.bias.data[p].clone()
            elif not (kind == "mod" and isinstance(m, nn.ReLU6)):
                break
            tail.insert(0, out.pop())
        if out and out[-1][0] == "conv" and out[-1][1].groups == 1:
            conv = out[-1][1]   # conv(x)[:, p]: its output channels reordered
            conv.weight.data = conv.weight.data[p].clone()
            conv.bias.data = conv.bias.data[p].clone()
        else:
            if tail and out and out[-1][0] == "conv" and isinstance(tail[0][1], nn.ReLU6):
                out.append(tail.pop(0))   # keep ReLU6 right after its conv (fused there)
            if not torch.equal(p, torch.arange(p.numel())):
                out.append(("perm", p))
        out.extend(tail)
    return out


class ExportBlock(nn.Module):
    def __init__(self, block: MicroBlock):
        super().__init__()
        self.residual = block.residual
        self.layers = nn.Sequential(*_export_layers(block.layers))

    def forward(self, x):
        out = self.layers(x)
        return out + x if self.residual else out


class MicroNetExport(nn.Module):
    """Inference-only MicroNet equal (in float) to the eval-mode original."""

    def __init__(self, net: "MicroNet"):
        super().__init__()
        self.stem = nn.Sequential(*_export_layers(net.stem))
        self.blocks = nn.Sequential(*[ExportBlock(b) for b in net.blocks])
        # head as 1x1 convs on the pooled (N, C, 1, 1) tensor: onnx2tf keeps
        # conv + HARD_SWISH (after a Gemm it splits hard-swish into two FCs)
        lin, bn = net.head[0], net.head[1]
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        self.head = nn.Conv2d(lin.in_features, lin.out_features, 1)
        self.head.weight.data = (lin.weight * scale[:, None]).detach().clone()[:, :, None, None]
        self.head.bias.data = ((lin.bias - bn.running_mean) * scale + bn.bias).detach().clone()
        self.fc = nn.Conv2d(net.fc.in_features, net.fc.out_features, 1)
        self.fc.weight.data = net.fc.weight.detach().clone()[:, :, None, None]
        self.fc.bias.data = net.fc.bias.detach().clone()
        self.eval()
        size = getattr(net, "input_size", None)
        if size:
            _avoid_group_width_clash(self, size)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = nn.functional.hardswish(nn.functional.relu6(x).mean((2, 3), keepdim=True))
        x = nn.functional.hardswish(self.head(x))
        return torch.flatten(self.fc(x), 1)


def _regrouped(conv: nn.Conv2d, groups: int) -> nn.Conv2d:
    """The same function with fewer groups (a divisor of conv.groups): each
    new group's weights are block-diagonal over the old groups it merges."""
    g0, cin, cout = conv.groups, conv.in_channels, conv.out_channels
    gi, go, r = cin // g0, cout // g0, g0 // groups
    new = nn.Conv2d(cin, cout, conv.kernel_size, conv.stride, conv.padding, groups=groups, bias=True)
    w = torch.zeros_like(new.weight)
    for g in range(g0):
        w[g * go:(g + 1) * go, (g % r) * gi:(g % r + 1) * gi] = conv.weight.data[g * go:(g + 1) * go]
    new.weight.data, new.bias.data = w, conv.bias.data.clone()
    return new


def _avoid_group_width_clash(export: nn.Module, size: int) -> None:
    """onnx2tf takes a grouped conv for a depthwise one (and fails) when it
    holds the conv's input as NCHW (after an Add/Max: Dynamic Shift-Max, a
    residual) and the group count equals the input width. Such a conv gets
    the largest group count below its own that divides it and differs from
    the width (block-diagonal weights: same function, a few more MACs)."""
    widths: dict[nn.Module, int] = {}
    convs = [m for m in export.modules() if isinstance(m, nn.Conv2d) and 1 < m.groups < m.in_channels]
    def hook(module, inputs, output):
        widths[module] = inputs[0].shape[-1]

    hooks = [c.register_forward_hook(hook) for c in convs]
    try:
        with torch.no_grad():
            export(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    for parent in export.modules():
        for name, child in parent.named_children():
            if child in widths and child.groups == widths[child]:
                g = max(d for d in range(1, child.groups) if child.groups % d == 0 and d != widths[child])
                setattr(parent, name, _regrouped(child, g))


def _export_form(self) -> MicroNetExport:
    """An equivalent inference-only module for ONNX/int8 export (see above)."""
    with torch.no_grad():
        return MicroNetExport(self)


MicroNet.export_form = _export_form
