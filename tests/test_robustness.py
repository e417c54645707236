"""Compression robustness: JPEG/resize degradations, option checks, and (slow)
`tinyfake eval RUN --jpeg 95,50 --resize 0.5` on a tiny exported run, with plots."""
import json

import numpy as np
import pytest

from tinyfake.cli import main
from tinyfake.data import load_dataset
from tinyfake.data.compress import jpeg_recompress, resize_roundtrip
from tinyfake.errors import UserError
from tinyfake.export.robustness import conditions, parse_qualities


def test_jpeg_loses_more_at_lower_quality():
    x = load_dataset(None, 32).x[:6]
    err = {q: np.abs(jpeg_recompress(x, q).astype(int) - x).mean() for q in (95, 50, 10)}
    assert 0 < err[95] < err[50] < err[10]
    assert jpeg_recompress(x, 50).shape == x.shape and jpeg_recompress(x, 50).dtype == np.uint8
    # channel order survives the RGB<->BGR round trip: a pure red image stays red
    red = np.zeros((1, 32, 32, 3), np.uint8)
    red[..., 0] = 200
    out = jpeg_recompress(red, 95)[0].mean(axis=(0, 1))
    assert out[0] > 150 and out[2] < 50


def test_resize_roundtrip_blurs_but_keeps_shape():
    x = load_dataset(None, 32).x[:4]
    y = resize_roundtrip(x, 0.5)
    assert y.shape == x.shape and not np.array_equal(x, y)
    assert np.array_equal(resize_roundtrip(x, 1.0), x)


def test_qualities_and_conditions():
    assert parse_qualities("95,75, 50") == [95, 75, 50]
    for bad in ("", "abc", "0", "101", "95,x"):
        with pytest.raises(UserError):
            parse_qualities(bad)
    assert [c[0] for c in conditions([95, 50], None)] == ["original", "jpeg95", "jpeg50"]
    assert [c[0] for c in conditions([75], 0.5)] == ["original", "resize0.5", "resize0.5_jpeg75"]
    with pytest.raises(UserError):
        conditions([75], 2.0)


def test_cli_bad_jpeg_option_is_one_line(capsys):
    assert main(["eval", "--jpeg", "95,200"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--jpeg" in err[0]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tinyfake.export.pipeline import export_run
    from tinyfake.runs import RunDir
    from tinyfake.train import make_config, train

    run = RunDir(tmp_path_factory.mktemp("runs") / "tiny")
    train(make_config(None, 32, epochs=1, batch_size=32, seed=1), run, progress=False)
    export_run(run, calib_images=32)
    return run


@pytest.mark.slow
def test_eval_jpeg_reports_every_condition_and_writes_plots(exported, capsys):
    run = exported
    assert main(["eval", str(run.root), "--jpeg", "95,50", "--resize", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "compression robustness" in out and "resize0.5_jpeg50" in out
    result = json.loads((run.root / "eval.json").read_text())
    rob = result["robustness"]
    assert list(rob) == ["original", "resize0.5", "resize0.5_jpeg95", "resize0.5_jpeg50"]
    for name, r in rob.items():
        for way in ("float", "int8_ref", "int8_tflm"):
            assert set(r[way]) >= {"accuracy", "auc", "f1", "eer", "n"}
            assert r[way]["n"] == result["n"]
    # the untouched condition is the plain evaluation
    for way in ("float", "int8_ref", "int8_tflm"):
        assert rob["original"][way]["accuracy"] == pytest.approx(result["metrics"][way]["accuracy"])
    assert rob["resize0.5_jpeg50"]["jpeg_quality"] == 50 and rob["resize0.5"]["resize"] == 0.5
    for png in ("roc.png", "training.png"):
        data = (run.root / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
