"""Extra input channels of the "Faster Than Lies" binary detector: FFT
magnitude spectrum and local binary patterns of the greyscale face.

Everything is integer so the firmware (firmware/binary/channels.c) computes
the same bytes from the RGB face it receives:
- grey = (77 R + 150 G + 29 B) >> 8 (uint8);
- LBP: 8 neighbours at radius 1, bit i set when neighbour i >= centre,
  neighbours clockwise from the top-left: (-1,-1) (-1,0) (-1,1) (0,1) (1,1)
  (1,0) (1,-1) (0,-1) (dy, dx); coordinates outside the image are clamped
  to the edge;
- FFT: N x N (N a power of two, 4..256) 2-D DFT of (grey - 128), rows then
  columns, each an in-place radix-2 decimation-in-time FFT on int64
  (bit-reversed input order; butterfly t = (b * w + 2^14) >> 15 per real
  part with w = cos - i sin from the Q15 table `TWIDDLE_COS/SIN` at index
  k * 256 / m-spacing; a' = a + t, b' = a - t; no scaling per stage);
  p = re^2 + im^2 (uint64); L = 256 * floor(log2 p) + next 8 mantissa bits
  (Mitchell's piecewise-linear log2; L = 0 when p = 0);
  byte = min(255, L * 255 // LMAX), LMAX = 256 * 2 * (8 + 2 * log2 N);
  the result is fftshifted (DC at (N/2, N/2)).
"""
from __future__ import annotations

import numpy as np

N_MAX = 256
TWIDDLE_COS = np.round(32767 * np.cos(2 * np.pi * np.arange(N_MAX // 2) / N_MAX)).astype(np.int64)
TWIDDLE_SIN = np.round(32767 * np.sin(2 * np.pi * np.arange(N_MAX // 2) / N_MAX)).astype(np.int64)

LBP_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3) -> uint8 (..., H, W)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB images (..., H, W, 3), got {rgb.dtype} {rgb.shape}")
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((77 * r + 150 * g + 29 * b) >> 8).astype(np.uint8)


def lbp(g: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W) -> uint8 (..., H, W) 8-neighbour radius-1 codes."""
    g = np.asarray(g, np.uint8)
    h, w = g.shape[-2:]
    ys, xs = np.arange(h), np.arange(w)
    code = np.zeros(g.shape, np.uint8)
    for bit, (dy, dx) in enumerate(LBP_OFFSETS):
        n = g[..., np.clip(ys + dy, 0, h - 1), :][..., np.clip(xs + dx, 0, w - 1)]
        code |= (n >= g).astype(np.uint8) << bit
    return code


def _log2_fixed(p: np.ndarray) -> np.ndarray:
    """256 * log2(p) by Mitchell's approximation, p uint64 > 0 (0 -> 0)."""
    p = p.astype(np.uint64)
    e = np.zeros(p.shape, np.int64)
    v = p.copy()
    for s in (32, 16, 8, 4, 2, 1):  # floor(log2 p) by binary search
        big = v >= (np.uint64(1) << np.uint64(s))
        e += np.where(big, s, 0)
        v = np.where(big, v >> np.uint64(s), v)
    # 8 mantissa bits below the leading one
    mant = np.where(e >= 8, p >> np.maximum(e - 8, 0).astype(np.uint64),
                    p << np.maximum(8 - e, 0).astype(np.uint64)).astype(np.int64) & 0xFF
    return np.where(p == 0, 0, e * 256 + mant)


def _fft_rows(re: np.ndarray, im: np.ndarray) -> None:
    """In-place fixed-point radix-2 DIT FFT along the last axis (int64 arrays)."""
    n = re.shape[-1]
    bits = n.bit_length() - 1
    rev = np.array([int(format(i, f"0{bits}b")[::-1], 2) for i in range(n)])
    re[...] = re[..., rev]
    im[...] = im[..., rev]
    m = 2
    while m <= n:
        half = m // 2
        k = np.arange(half) * (N_MAX // m)
        c, s = TWIDDLE_COS[k], TWIDDLE_SIN[k]
        for start in range(0, n, m):
            a = slice(start, start + half)
            b = slice(start + half, start + m)
            br, bi = re[..., b].copy(), im[..., b].copy()
            tr = (br * c + bi * s + (1 << 14)) >> 15
            ti = (bi * c - br * s + (1 << 14)) >> 15
            ar, ai = re[..., a].copy(), im[..., a].copy()
            re[..., a], im[..., a] = ar + tr, ai + ti
            re[..., b], im[..., b] = ar - tr, ai - ti
        m *= 2


def fft_magnitude(g: np.ndarray) -> np.ndarray:
    """uint8 (..., N, N) -> uint8 (..., N, N) log-magnitude spectrum, fftshifted."""
    g = np.asarray(g, np.uint8)
    n = g.shape[-1]
    if g.shape[-2] != n or n < 4 or n > N_MAX or n & (n - 1):
        raise ValueError(f"the FFT channel needs a square power-of-two image from 4 to {N_MAX} "
                         f"pixels, got {g.shape[-2]}x{g.shape[-1]}")
    re = g.astype(np.int64) - 128
    im = np.zeros_like(re)
    _fft_rows(re, im)
    re, im = np.swapaxes(re, -1, -2).copy(), np.swapaxes(im, -1, -2).copy()
    _fft_rows(re, im)
    re, im = np.swapaxes(re, -1, -2), np.swapaxes(im, -1, -2)
    p = (re * re).astype(np.uint64) + (im * im).astype(np.uint64)
    lmax = 256 * 2 * (8 + 2 * (n.bit_length() - 1))
    out = np.minimum(255, _log2_fixed(p) * 255 // lmax).astype(np.uint8)
    return np.roll(out, (n // 2, n // 2), axis=(-2, -1))


def extra_channels(rgb: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, H, W, 2): [FFT magnitude, LBP] of the grey face."""
    g = grey(rgb)
    return np.stack([fft_magnitude(g), lbp(g)], -1)


def with_channels(rgb: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, H, W, 5): R, G, B, FFT, LBP."""
    return np.concatenate([np.asarray(rgb, np.uint8), extra_channels(rgb)], -1)


def fft_size_ok(n: int) -> bool:
    return 4 <= n <= N_MAX and not n & (n - 1)


def check_fft_size(size: int) -> None:
    """One-line UserError unless the FFT channel can take size x size faces."""
    from tinyfake.errors import UserError

    if not fft_size_ok(int(size)):
        raise UserError(f"--channels rgb+fft+lbp needs an input size that is a power of two "
                        f"from 4 to {N_MAX} (the FFT's limit), got {size}")


def channels_of(config_or_channels) -> str:
    """"rgb" or "rgb+fft+lbp": a run's `[model] channels` (runs without it: "rgb")."""
    if isinstance(config_or_channels, str):
        return config_or_channels
    if config_or_channels is None:
        return "rgb"
    return str(config_or_channels.get("model", {}).get("channels", "rgb"))


def model_images(config_or_channels, rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB faces (N, H, W, 3) -> the uint8 images the run's model takes:
    the faces themselves, or (N, H, W, 5) R, G, B, FFT, LBP for "rgb+fft+lbp".
    Every place the host feeds a model (calibration, eval, verify's oracle,
    detect) goes through here; quantize with tinyfake.data.tensors."""
    channels = channels_of(config_or_channels)
    rgb = np.asarray(rgb)
    if channels == "rgb":
        return rgb
    if channels != "rgb+fft+lbp":
        raise ValueError(f"unknown input channels {channels!r}")
    if len(rgb) == 0:
        return np.zeros(rgb.shape[:-1] + (5,), np.uint8)
    return with_channels(rgb)
