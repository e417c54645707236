"""FFT/LBP input channels: exact integer form, numpy == C bit for bit."""
import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyfake.data.channels import (TWIDDLE_COS, TWIDDLE_SIN, extra_channels, fft_magnitude,
                                    grey, lbp, with_channels)

ROOT = Path(__file__).resolve().parents[1]
P = np.ctypeslib.ndpointer


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    so = tmp_path_factory.mktemp("ch") / "libtfkc.so"
    subprocess.run(["gcc", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    "-o", str(so), str(ROOT / "firmware/binary/channels.c")], check=True)
    lib = ctypes.CDLL(str(so))
    lib.tfkc_channels.argtypes = [P(np.uint8), ctypes.c_int, P(np.int64), P(np.uint8), P(np.uint8)]
    lib.tfkc_fft_magnitude.argtypes = [P(np.uint8), ctypes.c_int, P(np.int64), P(np.int64), P(np.uint8)]
    return lib


def c_channels(lib, rgb):
    n = rgb.shape[0]
    out = np.zeros((n, n, 5), np.uint8)
    assert lib.tfkc_channels(np.ascontiguousarray(rgb), n, np.zeros(2 * n * n, np.int64),
                             np.zeros(n * n, np.uint8), out) == 0
    return out


def real_faces(size):
    from skimage import data
    from skimage.transform import resize

    faces = [resize(data.astronaut()[:256, 128:384], (size, size), anti_aliasing=True)]
    faces += [np.repeat(resize(f, (size, size))[..., None], 3, -1) for f in data.lfw_subset()[:5]]
    return (np.clip(np.stack(faces), 0, 1) * 255).astype(np.uint8)


def test_twiddle_tables_agree(lib):
    for name, table in (("tfkc_twiddle_cos", TWIDDLE_COS), ("tfkc_twiddle_sin", TWIDDLE_SIN)):
        c = (ctypes.c_int16 * len(table)).in_dll(lib, name)
        assert list(c) == table.tolist()


@pytest.mark.parametrize("size", [32, 64, 128])
def test_c_equals_numpy_on_real_faces(lib, size):
    for rgb in real_faces(size):
        want = with_channels(rgb[None])[0]
        got = c_channels(lib, rgb)
        assert np.array_equal(got, want)


def test_c_equals_numpy_on_extremes(lib):
    rng = np.random.default_rng(0)
    for rgb in (np.zeros((16, 16, 3), np.uint8), np.full((16, 16, 3), 255, np.uint8),
                rng.integers(0, 256, (16, 16, 3)).astype(np.uint8),
                np.tile(np.array([0, 255], np.uint8), (16, 8))[..., None].repeat(3, -1)):
        assert np.array_equal(c_channels(lib, rgb), with_channels(rgb[None])[0])


def test_definitions():
    assert grey(np.array([[255, 255, 255], [255, 0, 0], [0, 0, 255]], np.uint8)).tolist() == [255, 76, 28]
    g = np.array([[5, 5, 5], [5, 4, 5], [5, 5, 5]], np.uint8)
    assert lbp(g)[1, 1] == 255 and lbp(255 - g)[1, 1] == 0
    flat = fft_magnitude(np.full((8, 8), 200, np.uint8))
    assert flat[4, 4] == flat.max() and (np.delete(flat.ravel(), 36) == 0).all()  # DC only


def test_fft_channel_tracks_float_log_spectrum():
    g = grey(real_faces(64))
    ref = np.log2(np.abs(np.fft.fftshift(np.fft.fft2(g.astype(float) - 128), axes=(-2, -1))) ** 2 + 1)
    got = fft_magnitude(g).astype(float)
    for a, b in zip(ref, got):
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.98


def test_fft_size_error():
    with pytest.raises(ValueError, match="power-of-two"):
        fft_magnitude(np.zeros((96, 96), np.uint8))
    assert extra_channels(np.zeros((2, 8, 8, 3), np.uint8)).shape == (2, 8, 8, 2)
