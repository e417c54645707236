"""The integer form of a binary (1-bit weight, 1-bit activation) convolution:
the host reference that defines the device's exact results. The runtime's
kernels (firmware/runtime/tfk_binary.c) equal it bit for bit, and so does
TFLite Micro on the int8 form (tinyfake.export.binary_tflite) of the same
layer: a sign op feeding a CONV_2D with +-1 weights.
- input: int8 NHWC activation x, int16 threshold th[c]: bit = x >= th[c]
  (bit 1 = +1, 0 = -1);
- packing: per pixel, ceil(C/32) little-endian uint32 words; channel c is
  bit c%32 of word c//32; bits past C are 0. Weights are packed the same way
  per (out channel, ky, kx), 1 bit per weight, layout [O][KH][KW][words];
- dot: for each output, over the taps inside the image (zero padding = taps
  skipped, exactly like a conv on +-1 values with zero padding):
  d = n - 2 * sum popcount(x_word XOR w_word), n = taps * C;
- output: TFLite's per-channel requantization of the accumulator d + bias:
  clamp(MultiplyByQuantizedMultiplier(d + bias[o], mult[o], shift[o]) + zp,
  act_min, act_max).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORD = 32


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
    """+-1 weights (O,KH,KW,C) (TFLite layout) -> packed (O,KH,KW,words): bit = w > 0."""
    return pack_bits(np.asarray(w_sign) > 0)


def popcount32(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.uint64)
    v = v - ((v >> np.uint64(1)) & np.uint64(0x55555555))
    v = (v & np.uint64(0x33333333)) + ((v >> np.uint64(2)) & np.uint64(0x33333333))
    v = (v + (v >> np.uint64(4))) & np.uint64(0x0F0F0F0F)
    return ((v * np.uint64(0x01010101)) & np.uint64(0xFFFFFFFF)) >> np.uint64(24)


def binary_dot(xbits: np.ndarray, wbits: np.ndarray, channels: int, stride: int, pad_top: int,
               pad_left: int, out_h: int, out_w: int) -> np.ndarray:
    """Integer +-1 convolution: packed x (H,W,words), packed w (O,K,K,words)
    -> int32 (OH,OW,O); taps outside the input are skipped (zero padding)."""
    h, w, nw = xbits.shape
    o, k, _, nw2 = wbits.shape
    if nw != nw2:
        raise ValueError(f"input has {nw} words per pixel, weights {nw2}")
    mism = np.zeros((out_h, out_w, o), np.int64)
    taps = np.zeros((out_h, out_w, 1), np.int64)
    ys = np.arange(out_h) * stride - pad_top
    xs = np.arange(out_w) * stride - pad_left
    for ky in range(k):
        for kx in range(k):
            iy, ix = ys + ky, xs + kx
            valid = ((iy >= 0) & (iy < h))[:, None] & ((ix >= 0) & (ix < w))[None, :]
            xv = xbits[np.clip(iy, 0, h - 1)][:, np.clip(ix, 0, w - 1)]  # (OH,OW,words)
            pc = popcount32(xv[:, :, None, :] ^ wbits[None, None, :, ky, kx, :]).sum(-1)
            mism += np.where(valid[:, :, None], pc.astype(np.int64), 0)
            taps += valid[:, :, None]
    return (taps * channels - 2 * mism).astype(np.int32)


@dataclass
class BinaryConvLayer:
    """Integer parameters of one binary conv as the device runs it: the
    thresholds of the sign that feeds it, packed weights, TFLite per-channel
    requantization (bias, multiplier, shift) and output range."""
    threshold: np.ndarray       # int16 (C,)
    wbits: np.ndarray           # uint32 (O, K, K, words)
    bias: np.ndarray            # int32 (O,)
    mult: np.ndarray            # int32 (O,)
    shift: np.ndarray           # int32 (O,)
    out_zp: int
    act_min: int = -128
    act_max: int = 127
    stride: int = 1
    pad_top: int = 0
    pad_left: int = 0

    def out_size(self, h: int, w: int, pad_bottom: int | None = None,
                 pad_right: int | None = None) -> tuple[int, int]:
        k = self.wbits.shape[1]
        pb = self.pad_top if pad_bottom is None else pad_bottom
        pr = self.pad_left if pad_right is None else pad_right
        return ((h + self.pad_top + pb - k) // self.stride + 1,
                (w + self.pad_left + pr - k) // self.stride + 1)


def binary_conv_ref(x: np.ndarray, layer: BinaryConvLayer, out_hw: tuple[int, int] | None = None
                    ) -> np.ndarray:
    """The exact device result of one binary conv: int8 (H,W,C) -> int8 (OH,OW,O)."""
    from tinyfake.compiler.quant import mbqm_array

    oh, ow = out_hw or layer.out_size(*x.shape[:2])
    d = binary_dot(pack_activations(x, layer.threshold), layer.wbits, x.shape[-1], layer.stride,
                   layer.pad_top, layer.pad_left, oh, ow)
    v = mbqm_array(d.astype(np.int64) + layer.bias, layer.mult, layer.shift) + layer.out_zp
    return np.clip(v, layer.act_min, layer.act_max).astype(np.int8)
