"""tinyfake.train: a real short training run, reloading it, and the CLI."""
import json

import numpy as np
import pytest
import torch

from tinyfake.cli import main
from tinyfake.metrics import binary_metrics
from tinyfake.runs import RunDir
from tinyfake.train import load_trained, make_config, predict, splits_from_config, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = RunDir(tmp_path_factory.mktemp("runs") / "tiny")
    config = make_config(None, 32, epochs=2, batch_size=32, seed=1)
    return run, config, train(config, run, progress=False)


def test_training_writes_run_files(trained):
    run, config, metrics = trained
    assert run.config.exists() and run.model_pt.exists() and run.metrics.exists()
    saved = run.read_config()
    assert saved == config
    assert set(saved["data"]) >= {"source", "size", "seed", "fractions", "skip_corrupt", "detect_faces"}
    assert saved["model"]["arch"] == "phinet" and saved["model"]["alpha"] == 0.25
    on_disk = json.loads(run.metrics.read_text())
    for split in ("val", "test"):
        assert set(on_disk[split]) >= {"accuracy", "auc", "f1", "eer"}
    assert on_disk["macs"] > 0 and on_disk["params"] > 0 and len(on_disk["history"]) == 2


def test_load_trained_reproduces_test_metrics(trained):
    run, config, metrics = trained
    model, cfg = load_trained(run.root)
    assert not model.training and cfg == config
    test = splits_from_config(cfg).test
    again = binary_metrics(test.y, predict(model, test.x))
    for key in ("accuracy", "auc", "f1", "eer"):
        assert again[key] == pytest.approx(metrics["test"][key], abs=1e-6)


def test_splits_from_config_is_the_training_split(trained):
    _, config, metrics = trained
    s = splits_from_config(config)
    assert {k: getattr(s, k).counts() for k in ("train", "val", "test")} == metrics["counts"]
    assert not set(s.train.group) & set(s.test.group)


def test_same_seed_same_weights(tmp_path):
    config = make_config(None, 32, epochs=1, seed=2)
    train(config, tmp_path / "a", progress=False)
    train(config, tmp_path / "b", progress=False)
    a, b = (torch.load(tmp_path / r / "model.pt", weights_only=True) for r in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_missing_data_is_one_line_exit_2(capsys, tmp_path):
    assert main(["train", "--data", "/nonexistent", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinyfake: error: dataset /nonexistent does not exist") and "\n" not in err
    assert not any(tmp_path.iterdir())


def test_cli_trains_default_data(capsys, tmp_path):
    assert main(["train", "--size", "32", "--epochs", "1", "--alpha", "0.5",
                 "--runs-dir", str(tmp_path), "--name", "cli"]) == 0
    out = capsys.readouterr().out
    assert "trained" in out and "auc" in out
    model, config = load_trained(tmp_path / "cli")
    assert config["model"]["alpha"] == 0.5 and config["train"]["epochs"] == 1
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 1)
    assert np.isfinite(json.loads((tmp_path / "cli" / "metrics.json").read_text())["val"]["loss"])
