"""Binary detector (ReActNet/BNext style) and the integer reference of its
binary layers.

Network: int8 stem (3x3/2 conv, BN, ReLU) -> `blocks` binary blocks -> GAP ->
full-precision linear head (one logit). A binary block is
    y = PReLU(BN(BinConv3x3(x)) + shortcut(x));  z = PReLU(BN(BinConv1x1(y)) + y)
where BinConv binarizes its input with a learned per-channel threshold
(RSign: bit = x >= t_c) and its weights by sign, with a learned per-output
channel scale; both signs use a straight-through estimator. Shortcuts stay
real-valued (average-pool on stride 2, channels duplicated when they double).
Optionally the input is RGB + FFT + LBP channels squeezed to 3 by a learned
1x1 adapter (tinyfake.data.channels).

Device form of one binary conv (defines the exact result; firmware/binary/
equals it bit for bit):
- input: int8 NHWC activation x, int16 threshold th[c]: bit = x >= th[c]
  (bit 1 = +1, 0 = -1);
- packing: per pixel, ceil(C/32) little-endian uint32 words; channel c is
  bit c%32 of word c//32; bits past C are 0. Weights are packed the same way
  per (out channel, ky, kx), 1 bit per weight, layout [O][KH][KW][words];
- dot: for each output, over the taps inside the image (zero padding = taps
  skipped, exactly like a conv on +-1 values with zero padding):
  d = n - 2 * sum popcount(x_word XOR w_word), n = taps * C
  (equal to 2 * popcount(XNOR) - n over the valid bits);
- output: q = clamp((d * mult[o] + bias[o] + 2^(S-1)) >> S, -128, 127),
  S = BIN_SHIFT, 64-bit intermediate, arithmetic shift (floor).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

BIN_SHIFT = 20
WORD = 32


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


class ChannelAdapter(nn.Module):
    """RGB -> RGB + FFT magnitude + LBP (exact integer form) -> learned 1x1 -> 3 channels."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(5, 3, 1)
        with torch.no_grad():  # start as "RGB passes through"
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            for c in range(3):
                self.conv.weight[c, c] = 1.0

    def forward(self, x):
        from tinyfake.data.channels import extra_channels

        with torch.no_grad():
            u8 = (x.detach().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8)
            extra = extra_channels(u8.permute(0, 2, 3, 1).numpy())  # (N,H,W,2) uint8
            extra = torch.from_numpy(extra).permute(0, 3, 1, 2).to(x.dtype).to(x.device) / 255.0
        return self.conv(torch.cat([x, extra], 1))


class BinaryNet(nn.Module):
    """int8 stem -> binary blocks (widths 2w, 4w, 4w, ...; stride 2 where
    the width doubles) -> GAP -> linear (one logit)."""

    def __init__(self, input_size: int, width: int = 16, blocks: int = 4, channels: str = "rgb"):
        super().__init__()
        if channels not in ("rgb", "rgb+fft+lbp"):
            raise ValueError(f"channels must be 'rgb' or 'rgb+fft+lbp', got {channels!r}")
        self.adapter = ChannelAdapter() if channels == "rgb+fft+lbp" else None
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
        if self.adapter is not None:
            x = self.adapter(x)
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


# --- device form: bit packing and the integer reference ---------------------

def words(channels: int) -> int:
    return (channels + WORD - 1) // WORD


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """bool (..., C) -> uint32 (..., ceil(C/32)); channel c = bit c%32 of word c//32."""
    bits = np.asarray(bits, bool)
    c = bits.shape[-1]
    padded = np.zeros(bits.shape[:-1] + (words(c) * WORD,), np.uint64)
    padded[..., :c] = bits
    weights = np.uint64(1) << np.arange(WORD, dtype=np.uint64)
    packed = (padded.reshape(bits.shape[:-1] + (words(c), WORD)) * weights).sum(-1)
    return packed.astype(np.uint32)


def pack_activations(x: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """int8 (H,W,C) and int16 thresholds (C,) -> packed bits (H,W,words): bit = x >= th."""
    return pack_bits(x.astype(np.int16) >= threshold.astype(np.int16))


def pack_weights(w_sign: np.ndarray) -> np.ndarray:
    """+-1 weights (O,C,KH,KW) (PyTorch layout) -> packed (O,KH,KW,words): bit = w > 0."""
    return pack_bits(np.transpose(np.asarray(w_sign) > 0, (0, 2, 3, 1)))


def _popcount32(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.uint64)
    v = v - ((v >> np.uint64(1)) & np.uint64(0x55555555))
    v = (v & np.uint64(0x33333333)) + ((v >> np.uint64(2)) & np.uint64(0x33333333))
    v = (v + (v >> np.uint64(4))) & np.uint64(0x0F0F0F0F)
    return ((v * np.uint64(0x01010101)) & np.uint64(0xFFFFFFFF)) >> np.uint64(24)


def binary_dot(xbits: np.ndarray, wbits: np.ndarray, channels: int, stride: int,
               pad: int) -> np.ndarray:
    """Integer +-1 convolution: packed x (H,W,words), packed w (O,K,K,words)
    -> int32 (OH,OW,O), zero padding (taps outside the image are skipped)."""
    h, w, nw = xbits.shape
    o, k, _, nw2 = wbits.shape
    if nw != nw2:
        raise ValueError(f"input has {nw} words per pixel, weights {nw2}")
    oh = (h + 2 * pad - k) // stride + 1
    ow = (w + 2 * pad - k) // stride + 1
    mism = np.zeros((oh, ow, o), np.int64)
    taps = np.zeros((oh, ow, 1), np.int64)
    ys = np.arange(oh) * stride - pad
    xs = np.arange(ow) * stride - pad
    for ky in range(k):
        for kx in range(k):
            iy, ix = ys + ky, xs + kx
            vy, vx = (iy >= 0) & (iy < h), (ix >= 0) & (ix < w)
            valid = vy[:, None] & vx[None, :]
            xv = xbits[np.clip(iy, 0, h - 1)][:, np.clip(ix, 0, w - 1)]  # (OH,OW,words)
            pc = _popcount32(xv[:, :, None, :] ^ wbits[None, None, :, ky, kx, :]).sum(-1)
            mism += np.where(valid[:, :, None], pc.astype(np.int64), 0)
            taps += valid[:, :, None]
    return (taps * channels - 2 * mism).astype(np.int32)


def requantize(d: np.ndarray, mult: np.ndarray, bias: np.ndarray, shift: int = BIN_SHIFT) -> np.ndarray:
    """int32 dots (..., O) -> int8: clamp((d*mult + bias + 2^(S-1)) >> S)."""
    v = d.astype(np.int64) * mult.astype(np.int64) + bias.astype(np.int64) + (1 << (shift - 1))
    return np.clip(v >> shift, -128, 127).astype(np.int8)


def binary_conv_ref(x: np.ndarray, threshold: np.ndarray, wbits: np.ndarray, mult: np.ndarray,
                    bias: np.ndarray, stride: int, pad: int, shift: int = BIN_SHIFT) -> np.ndarray:
    """The exact device result of one binary conv: int8 (H,W,C) -> int8 (OH,OW,O)."""
    d = binary_dot(pack_activations(x, threshold), wbits, x.shape[-1], stride, pad)
    return requantize(d, mult, bias, shift)


def fold_binary_conv(conv: BinaryConv2d, bn: nn.BatchNorm2d, in_scale: float, in_zp: int,
                     out_scale: float, out_zp: int, shift: int = BIN_SHIFT) -> dict:
    """Integer parameters of conv + BN for int8 input (in_scale, in_zp) and int8
    output (out_scale, out_zp): thresholds, packed weights, mult, bias."""
    t = conv.threshold.detach().double().numpy()
    th = np.clip(np.ceil(in_zp + t / in_scale), -128, 128).astype(np.int16)
    wsign = np.where(conv.weight.detach().numpy() >= 0, 1, -1)
    inv = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().numpy()
    a = conv.scale.detach().double().numpy() * inv                        # y = a*d + b
    b = bn.bias.detach().double().numpy() - bn.running_mean.detach().double().numpy() * inv
    lim = (1 << 31) - 1
    mult = np.clip(np.round(a / out_scale * (1 << shift)), -lim, lim).astype(np.int32)
    bias = np.clip(np.round((b / out_scale + out_zp) * (1 << shift)), -lim, lim).astype(np.int32)
    return dict(threshold=th, wbits=pack_weights(wsign), mult=mult, bias=bias,
                stride=int(conv.stride[0]), pad=int(conv.padding[0]), shift=shift,
                channels=conv.in_channels)


# --- storage ---------------------------------------------------------------

def weight_bytes(model: nn.Module) -> dict:
    """Flash bytes of the weights: `int8` = the same architecture with every
    conv/linear weight in int8 (1 byte each) plus int32 bias and per-channel
    int32 multiplier/shift per output channel; `binary` = binary convs stored
    bit-packed ([O][KH][KW][words] uint32) with int16 thresholds per input
    channel and int32 mult/bias per output channel, everything else as int8."""
    int8 = binary = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            per_out = 12  # int32 bias + int32 multiplier + int32 shift
            dense = m.weight.numel() + m.weight.shape[0] * per_out
            int8 += dense
            if isinstance(m, BinaryConv2d):
                o, c, kh, kw = m.weight.shape
                binary += o * kh * kw * words(c) * 4 + 2 * c + 8 * o
            else:
                binary += dense
        elif isinstance(m, nn.PReLU):  # int8 alpha per channel + its multiplier
            int8 += m.weight.numel() * 5
            binary += m.weight.numel() * 5
    return {"int8": int8, "binary": binary, "reduction": int8 / binary if binary else math.nan}
