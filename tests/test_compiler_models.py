"""Whole models: generated C vs the TFLite Micro wheel on the bench models.

Inputs: the benchmark LCG (seed 1), seeded random tensors, and real faces
(skimage's astronaut crop and LFW faces). Every output must be identical.
Both kernel variants run: portable C, and the Cortex-M7 DSP kernels with
their intrinsics emulated in C on the host.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tflite_micro")

from tinyfake.compiler import compile_model  # noqa: E402
from tinyfake.compiler.hostbuild import HostModel, build_host  # noqa: E402
from tinyfake.compiler.oracle import Oracle, lcg_input  # noqa: E402

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "models"
MODELS = ["phinet96", "phinet64", "phinet96compat", "xinet96"]


def _faces(h: int, w: int) -> list[np.ndarray]:
    """uint8 NHWC face images at the model's input size."""
    from skimage import data, transform
    astro = data.astronaut()[0:220, 140:340]          # the face and hair
    faces = [astro]
    lfw = data.lfw_subset()[:6]                       # greyscale 25x25 in [0, 1]
    faces += [np.repeat((f * 255).astype(np.uint8)[..., None], 3, axis=2) for f in lfw]
    return [(transform.resize(f, (h, w), anti_aliasing=True, preserve_range=True)).round()
            .clip(0, 255).astype(np.uint8) for f in faces]


def _quantize(img: np.ndarray, scale: float, zp: int) -> np.ndarray:
    try:
        from tinyfake.data.tensors import quantize_input
        return np.asarray(quantize_input(img[None], scale, zp), dtype=np.int8)
    except ImportError:  # data stage not in this checkout: same definition
        q = np.round(img.astype(np.float32) / 255.0 / np.float32(scale)) + zp
        return np.clip(q, -128, 127).astype(np.int8)


@pytest.fixture(scope="module", params=MODELS)
def bench_model(request, tmp_path_factory):
    path = BENCH / f"{request.param}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not present")
    gen = tmp_path_factory.mktemp(request.param)
    cm = compile_model(path, gen)
    h, w, _ = ([1] * 4 + list(cm.input_shape))[-3:]
    inputs = [("lcg", lcg_input(cm.input_bytes))]
    rng = np.random.default_rng(7)
    inputs += [(f"random{i}", rng.integers(-128, 128, cm.input_bytes).astype(np.int8)) for i in range(2)]
    inputs += [(f"face{i}", _quantize(f, cm.input_scale, cm.input_zero_point))
               for i, f in enumerate(_faces(h, w))]
    oracle = Oracle(path)
    expected = {name: oracle.run(x) for name, x in inputs}
    return path, gen, cm, inputs, expected


@pytest.mark.parametrize("dsp", [False, True], ids=["portable", "dsp"])
def test_bench_model_bit_exact(bench_model, dsp):
    path, gen, cm, inputs, expected = bench_model
    model = HostModel(build_host(gen, dsp=dsp), cm.input_bytes, cm.output_bytes)
    for name, x in inputs:
        got = model.run(x)
        assert np.array_equal(got, expected[name]), f"{path.name} on {name}: got {got}, want {expected[name]}"
    # the outputs are not degenerate: different inputs give different scores
    assert len({tuple(v) for v in expected.values()}) > 1


def test_bench_model_memory_targets(bench_model):
    """Arena at most 60% of what TFLite Micro needs for the same model."""
    path, gen, cm, _, _ = bench_model
    tflm = Oracle(path).arena_used()
    assert cm.arena_bytes <= 0.6 * tflm, f"{path.name}: arena {cm.arena_bytes} B vs TFLM {tflm} B"
    header = (gen / "model.h").read_text()
    assert f"#define MODEL_ARENA_BYTES {cm.arena_bytes}" in header
    assert f"#define MODEL_WEIGHT_BYTES {cm.weight_bytes}" in header


@pytest.mark.parametrize("dsp", [False, True], ids=["portable", "dsp"])
def test_optimize_size_is_bit_exact_in_less_flash(bench_model, dsp, tmp_path):
    """--optimize size: int8 weights only (no doubled int16 layouts), the
    same outputs as TFLite Micro, fewer weight bytes wherever a fast layout was used."""
    path, _, cm, inputs, expected = bench_model
    small = compile_model(path, tmp_path / "gen", optimize="size")
    assert not any(op.kernel in ("tfk_pw16", "tfk_dw3x3", "tfk_dwk") for op in small.ops)
    if any(op.kernel in ("tfk_pw16", "tfk_dw3x3", "tfk_dwk") for op in cm.ops):
        assert small.weight_bytes < cm.weight_bytes
    model = HostModel(build_host(tmp_path / "gen", dsp=dsp), small.input_bytes, small.output_bytes)
    for name, x in inputs:
        assert np.array_equal(model.run(x), expected[name]), f"{path.name} --optimize size on {name}"
