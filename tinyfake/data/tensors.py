"""The only place where image layouts and scaling change.

Datasets hold uint8 NHWC images (what a camera and the device see; 5 channels
for RGB + FFT + LBP models, tinyfake.data.channels.model_images). The float
model input is x / 255 in [0, 1]: NCHW for PyTorch and ONNX, NHWC for the
TFLite float view. The device input is that float value quantized with the
int8 model's input scale and zero point.
"""
from __future__ import annotations

import numpy as np


def _check_uint8(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or x.shape[-1] not in (1, 3, 5):
        raise ValueError(f"expected uint8 images (N,H,W,C) or (H,W,C), got {x.dtype} {x.shape}")
    return x


def to_float_nhwc(x: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 NHWC in [0, 1] (the TFLite float input)."""
    return _check_uint8(x).astype(np.float32) / np.float32(255.0)


def to_float_nchw(x: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 NCHW in [0, 1] (the PyTorch / ONNX input).

    A single (H,W,C) image becomes (C,H,W).
    """
    f = to_float_nhwc(x)
    axes = (0, 3, 1, 2) if f.ndim == 4 else (2, 0, 1)
    return np.ascontiguousarray(f.transpose(axes))


def quantize_input(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """uint8 NHWC -> int8 NHWC for an int8 model whose float input is x/255.

    Rounds half away from zero like TFLite's quantize kernel, in float32.
    """
    if not scale > 0:
        raise ValueError(f"quantization scale must be > 0, got {scale}")
    v = to_float_nhwc(x) / np.float32(scale)
    q = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)) + np.float32(zero_point)
    return np.clip(q, -128, 127).astype(np.int8)
