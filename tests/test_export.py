"""tinyfake export: ONNX -> int8 TFLite (onnx2tf) -> TFLite Micro C array.

The slow tests convert real PhiNets (tens of seconds each); the fast ones
check the C array, the error paths and the readers on the shared bench models.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures.oracle import explained_differences

from tinyfake.cli import main
from tinyfake.errors import UserError
from tinyfake.export import (TFLM_OPS, c_array_source, check_int8_tflm, first_divergent_op,
                             io_quant, op_names, parse_c_array, tflite_int8_outputs,
                             tflm_arena_usage, tflm_outputs)
from tinyfake.export.onnx_export import export_onnx
from tinyfake.export.tflite_int8 import convert_int8

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "models"


def _cli_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tinyfake: error: "), err
    return err[0]


# --- C array ---------------------------------------------------------------

def test_c_array_round_trips_with_alignment_and_size_symbol():
    data = bytes(range(256)) * 3 + b"\x07"
    source, header = c_array_source(data)
    assert "alignas(16) const unsigned char g_model_data[]" in source
    assert f"const unsigned int g_model_data_len = {len(data)};" in source
    assert "extern const unsigned char g_model_data[];" in header
    assert "extern const unsigned int g_model_data_len;" in header
    assert parse_c_array(source) == data


def test_c_array_parser_rejects_a_wrong_length():
    source, _ = c_array_source(b"\x01\x02\x03")
    with pytest.raises(ValueError, match="holds 3 bytes"):
        parse_c_array(source.replace("g_model_data_len = 3", "g_model_data_len = 4"))


# --- error paths -------------------------------------------------------------

def test_export_of_a_missing_run_dir_is_one_line(tmp_path, capsys):
    line = _cli_error(capsys, ["export", str(tmp_path / "nope")])
    assert "not a tinyfake run directory" in line


def test_export_of_an_untrained_run_is_one_line(tmp_path, capsys):
    (tmp_path / "config.toml").write_text("[data]\nsize = 64\n")
    line = _cli_error(capsys, ["export", str(tmp_path)])
    assert "no model.pt" in line and "tinyfake train" in line


def test_export_without_any_run_says_train_first(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = _cli_error(capsys, ["export"])
    assert "tinyfake train" in line


def test_eval_before_export_says_export_first(tmp_path, capsys):
    from tinyfake.runs import RunDir
    from tinyfake.train import make_config, model_from_config

    run = RunDir(tmp_path / "r")
    config = make_config(None, 32)
    run.write_config(config)
    torch.save(model_from_config(config).state_dict(), run.model_pt)
    line = _cli_error(capsys, ["eval", str(run.root)])
    assert "tinyfake export" in line


def test_opset_13_is_refused(tmp_path):
    with pytest.raises(UserError, match="opset 13"):
        export_onnx(torch.nn.Conv2d(3, 1, 1), 8, tmp_path / "m.onnx", opset=13)


def test_onnx2tf_failure_is_a_one_line_user_error(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(UserError, match="onnx2tf failed") as exc:
        convert_int8(tmp_path / "bad.onnx", np.zeros((2, 8, 8, 3), np.float32), tmp_path / "m.tflite")
    assert "\n" not in str(exc.value)


def test_a_model_with_float_io_is_refused():
    from tflite_micro.python.tflite_micro import runtime
    path = runtime.__file__.replace("runtime.py", "sine_float.tflite")  # float model in the wheel
    with pytest.raises(UserError, match="not quantized int8"):
        check_int8_tflm(path)


# --- readers and oracles on the shared reference models ----------------------

@pytest.mark.parametrize("name", ["phinet64", "phinet96compat"])
def test_bench_models_read_and_run_in_tflite_micro(name):
    path = BENCH / f"{name}.tflite"
    if not path.exists():
        pytest.skip("shared bench models not present")
    check_int8_tflm(path)
    inp, out = io_quant(path)
    assert inp.dtype == out.dtype == "int8" and inp.shape[1:] == (int(name[6:8]),) * 2 + (3,)
    x = np.random.default_rng(1).integers(-128, 128, (4, *inp.shape[1:]), dtype=np.int8)
    got = tflm_outputs(path, x)
    assert got.shape == (4, *out.shape[1:]) and got.dtype == np.int8
    explained_differences(path, x, tflite_int8_outputs(path, x), got)
    arena = tflm_arena_usage(path)
    assert arena.total == arena.head + arena.tail and arena.head > 0


# --- real conversions (slow) --------------------------------------------------

def _settled(model, size):
    """Untrained PhiNet blows up through its layers (BatchNorm statistics are
    still the identity); a few train-mode passes give it sane ranges."""
    g = torch.Generator().manual_seed(0)
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.rand(8, 3, size, size, generator=g))
    return model.eval()


@pytest.mark.slow
@pytest.mark.parametrize("size,se_hswish", [(64, True), (96, True), (64, False), (96, False)])
def test_bench_like_phinets_convert_for_tflite_micro(tmp_path, size, se_hswish):
    from tinyfake.models import build_model

    model = _settled(build_model("phinet", size, squeeze_excite=se_hswish, h_swish=se_hswish), size)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, size, size, 3), dtype=np.uint8)
    export_onnx(model, size, tmp_path / "m.onnx")
    tflite = convert_int8(tmp_path / "m.onnx", images[:16].astype(np.float32) / 255, tmp_path / "m.tflite")
    inp, out = io_quant(tflite)
    assert (inp.dtype, out.dtype, inp.shape, out.shape) == ("int8", "int8", (1, size, size, 3), (1, 1))
    ops = op_names(tflite)
    assert set(ops) <= TFLM_OPS
    assert ("HARD_SWISH" in ops) == se_hswish and ("LOGISTIC" in ops) == se_hswish
    ref, micro = tflite_int8_outputs(tflite, images), tflm_outputs(tflite, images)
    explained_differences(tflite, images, ref, micro)


@pytest.mark.slow
def test_tflite_micro_and_reference_differ_only_by_known_rounding(tmp_path):
    from tinyfake.models import build_model

    size = 64
    model = _settled(build_model("phinet", size), size)  # squeeze-excite: LOGISTIC
    images = np.random.default_rng(0).integers(0, 256, (60, size, size, 3), dtype=np.uint8)
    export_onnx(model, size, tmp_path / "m.onnx")
    tflite = convert_int8(tmp_path / "m.onnx", images[:16].astype(np.float32) / 255, tmp_path / "m.tflite")
    ref, micro = tflite_int8_outputs(tflite, images), tflm_outputs(tflite, images)
    explained_differences(tflite, images, ref, micro)


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory):
    """A PhiNet (hard-swish, no squeeze-excite) trained briefly on the embedded
    demo set, then exported with the CLI."""
    from tinyfake.runs import RunDir
    from tinyfake.train import make_config, train

    run = RunDir(tmp_path_factory.mktemp("runs") / "phinet48")
    config = make_config(None, 48, model_kwargs=dict(squeeze_excite=False), epochs=4, patience=4)
    train(config, run, threads=2, progress=False)
    assert main(["export", str(run.root), "--calib-images", "64"]) == 0
    return run


@pytest.mark.slow
def test_export_writes_int8_tflite_and_c_array(exported_run):
    run = exported_run
    for path in (run.onnx, run.tflite, run.model_data_cc, run.model_data_h, run.root / "eval.json"):
        assert path.exists(), path
    inp, out = io_quant(run.tflite)
    assert inp.dtype == out.dtype == "int8" and inp.shape == (1, 48, 48, 3)
    assert set(op_names(run.tflite)) <= TFLM_OPS
    source = run.model_data_cc.read_text()
    assert "alignas(16) const unsigned char g_model_data[]" in source
    assert parse_c_array(source) == run.tflite.read_bytes()
    assert "g_model_data_len" in run.model_data_h.read_text()


@pytest.mark.slow
def test_tflite_micro_equals_reference_kernels_on_the_test_split(exported_run):
    from tinyfake.train import load_trained, splits_from_config

    _, config = load_trained(exported_run)
    test = splits_from_config(config).test
    assert len(test) > 0
    ref = tflite_int8_outputs(exported_run.tflite, test.x)
    micro = tflm_outputs(exported_run.tflite, test.x)
    assert ref.shape == micro.shape == (len(test), 1)
    # Bit for bit on every image, except rounding ties (fixtures.oracle).
    explained_differences(exported_run.tflite, test.x, ref, micro)


@pytest.mark.slow
def test_eval_json_records_three_ways_and_agreement(exported_run):
    result = json.loads((exported_run.root / "eval.json").read_text())
    assert set(result["metrics"]) == {"float", "int8_ref", "int8_tflm"}
    assert result["tflm_vs_ref_mismatched_images"] <= max(1, result["n"] // 20)
    assert result["max_abs_score_diff_float_vs_int8"] < 0.1
    assert result["model_bytes"] == exported_run.tflite.stat().st_size
    assert result["tflm_arena_bytes"] > result["tflm_arena_activation_bytes"] >= 48 * 48 * 3
