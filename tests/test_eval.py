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
    whole = run.root / "eval.json"
    before = whole.read_bytes() if whole.exists() else None
    assert main(["eval", str(run.root), "--limit", "12"]) == 0
    out = capsys.readouterr().out
    assert "int8 TFLite Micro" in out and "float PyTorch" in out
    # a sample writes its own file: it never replaces the whole split's eval.json
    assert (whole.read_bytes() if whole.exists() else None) == before
    result = json.loads((run.root / "eval_limit12.json").read_text())
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
    # model.pt replaced after the export (its manifest records the old one)
    weights = run.model_pt.read_bytes()
    run.model_pt.write_bytes(weights + b"retrained")
    try:
        assert main(["eval", str(run.root)]) == 2
        err = capsys.readouterr().err
        assert "model_int8.tflite is stale (model.pt changed since it was made)" in err
    finally:
        run.model_pt.write_bytes(weights)


def test_eval_of_a_missing_run_is_one_line(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a tinyfake run directory" in err[0]
