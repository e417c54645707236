"""tinyfake eval: float PyTorch vs int8 TFLite (reference kernels) vs TFLite Micro."""
import json

import numpy as np
import pytest
from fixtures.oracle import MAX_OUTPUT_STEPS

from tinyfake.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small PhiNet trained for two epochs on the embedded demo set, exported."""
    from tinyfake.export.pipeline import export_run
    from tinyfake.runs import RunDir
    from tinyfake.train import make_config, train

    run = RunDir(tmp_path_factory.mktemp("runs") / "phinet32")
    train(make_config(None, 32, epochs=2), run, threads=2, progress=False)
    export_run(run, calib_images=32)
    return run


@pytest.mark.slow
def test_eval_on_a_sample_of_the_test_split(run, capsys):
    assert main(["eval", str(run.root), "--limit", "12"]) == 0
    out = capsys.readouterr().out
    assert "int8 TFLite Micro" in out and "float PyTorch" in out
    result = json.loads((run.root / "eval.json").read_text())
    assert result["n"] == 12 and "seeded sample of 12" in result["data"]
    for way in ("float", "int8_ref", "int8_tflm"):
        m = result["metrics"][way]
        assert m["n"] == 12 and 0 <= m["accuracy"] <= 1
    # The interpreters may differ only by rounding ties, which ones depending on
    # the trained weights: one step where they part, a few at the output.
    if result["tflm_vs_ref_mismatched_images"]:
        assert result["tflm_vs_ref_first_divergence"]["max_abs_diff"] == 1
    assert result["tflm_vs_ref_max_output_steps"] <= MAX_OUTPUT_STEPS
    assert 0 <= result["max_abs_score_diff_float_vs_int8"] < 0.2
    assert result["tflm_arena_bytes"] > 0 and result["model_bytes"] == run.tflite.stat().st_size


@pytest.mark.slow
def test_eval_on_another_dataset_writes_its_own_file(run, tmp_path, capsys):
    rng = np.random.default_rng(3)
    npz = tmp_path / "other.npz"
    np.savez(npz, x=rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8),
             y=np.array([0, 1] * 5, np.uint8))
    assert main(["eval", str(run.root), "--data", str(npz)]) == 0
    result = json.loads((run.root / "eval_other.json").read_text())
    assert result["n"] == 10 and result["counts"] == {"real": 5, "fake": 5}


@pytest.mark.slow
def test_eval_of_a_missing_dataset_is_one_line(run, tmp_path, capsys):
    assert main(["eval", str(run.root), "--data", str(tmp_path / "missing.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tinyfake: error: dataset")


@pytest.mark.slow
def test_eval_refuses_a_stale_export(run, capsys):
    import os
    t = run.tflite.stat().st_mtime
    os.utime(run.model_pt, (t + 10, t + 10))
    try:
        assert main(["eval", str(run.root)]) == 2
        assert "newer than model_int8.tflite" in capsys.readouterr().err
    finally:
        os.utime(run.model_pt, (t, t))


def test_eval_of_a_missing_run_is_one_line(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a tinyfake run directory" in err[0]
