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
    made = saved.pop("made")  # what made the run: tinyfake's version and the data's digest
    assert saved == config
    assert made["tinyfake"] and len(made["data_sha256"]) == 64
    assert set(saved["data"]) >= {"source", "size", "seed", "fractions", "skip_corrupt", "detect_faces"}
    assert saved["model"]["arch"] == "phinet" and saved["model"]["alpha"] == 0.25
    on_disk = json.loads(run.metrics.read_text())
    for split in ("val", "test"):
        assert set(on_disk[split]) >= {"accuracy", "auc", "f1", "eer"}
    assert on_disk["macs"] > 0 and on_disk["params"] > 0 and len(on_disk["history"]) == 2


def test_load_trained_reproduces_test_metrics(trained):
    run, config, metrics = trained
    model, cfg = load_trained(run.root)
    cfg.pop("made")
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


def test_dataloader_workers_do_not_change_the_weights(tmp_path):
    """Each batch's augmentation has its own seed, so worker processes (here
    two, with the strong policy) give the weights of the in-process loop."""
    runs = {}
    for workers in (0, 2):
        config = make_config(None, 32, epochs=1, seed=4, augment="strong", workers=workers)
        train(config, tmp_path / f"w{workers}", progress=False)
        runs[workers] = torch.load(tmp_path / f"w{workers}" / "model.pt", weights_only=True)
    assert all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_augmentation_policies_differ_and_keep_shape():
    from tinyfake.data.augment import augment_policy, policy_name
    x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    out = {p: augment_policy(x, np.random.default_rng(1), p) for p in ("none", "mild", "jpeg", "strong")}
    assert out["none"] is x
    assert all(o.shape == x.shape and o.dtype == np.uint8 for o in out.values())
    assert not np.array_equal(out["mild"], x)
    # jpeg re-encodes some of mild's images (the same draws) and leaves the others as mild made them
    changed = [not np.array_equal(j, m) for j, m in zip(out["jpeg"], out["mild"])]
    assert any(changed) and not all(changed)
    assert not np.array_equal(out["strong"], out["jpeg"])
    assert policy_name(True) == "mild" and policy_name(False) == "none"  # older runs' bools


@pytest.mark.parametrize("argv, message", [
    (["--augment", "wild"], "invalid choice"),
    (["--augment", "strong", "--no-augment"], "contradicts"),
    (["--workers", "-1"], "--workers must be an integer >= 0"),
    (["--recipe", "no-such-recipe"], "no recipe 'no-such-recipe'"),
])
def test_cli_bad_training_options_are_one_line(capsys, tmp_path, argv, message):
    try:
        code = main(["train", "--runs-dir", str(tmp_path), *argv])
    except SystemExit as exc:  # argparse's own choice check
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]


def test_recipe_fills_options_the_command_line_does_not_give(tmp_path):
    from tinyfake.train.command import add_arguments, apply_recipe, config_from_args
    import argparse

    recipe = tmp_path / "r.toml"
    recipe.write_text('size = 48\nalpha = 0.5\naugment = "strong"\nepochs = 3\n')
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--recipe", str(recipe), "--epochs", "7"])
    apply_recipe(args)
    config = config_from_args(args)
    assert config["data"]["size"] == 48 and config["model"]["alpha"] == 0.5
    assert config["train"]["augment"] == "strong" and config["train"]["epochs"] == 7  # the CLI wins
    recipe.write_text("sizes = 48\n")
    with pytest.raises(Exception, match="unknown option"):
        apply_recipe(p.parse_args(["--recipe", str(recipe)]))
    # the shipped recipes read
    args = p.parse_args(["--recipe", "dfdc"])
    apply_recipe(args)
    assert config_from_args(args)["train"]["method"] == "supervised"
    args = p.parse_args(["--recipe", "dfdc-finetune", "--init", str(tmp_path)])
    apply_recipe(args)
    t = config_from_args(args)["train"]
    assert (t["method"], t["augment"], t["finetune"]["init"]) == ("finetune", "jpeg", str(tmp_path))
    args = p.parse_args(["--recipe", "dfdc-qat", "--init", str(tmp_path)])
    apply_recipe(args)
    t = config_from_args(args)["train"]
    assert (t["method"], t["batch_size"], t["qat"]["epochs"], t["qat"]["init"]) == ("qat", 16, 6, str(tmp_path))


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "0"], "--batch-size must be at least 2"),
    (["--lr", "-1"], "--lr must be a positive number"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--epochs", "-1"], "--epochs must be at least 1"),
    (["--patience", "0"], "--patience must be at least 1"),
    (["--weight-decay", "-0.1"], "--weight-decay must be >= 0"),
    (["--alpha", "0"], "--alpha (PhiNet width) must be from 0.05 to 4"),
    (["--size", "100000"], "--size must be an integer from 8 to 512"),
    (["--name", "../escaped"], "must be a plain folder name"),
    (["--name", ".hidden"], "must be a plain folder name"),
    (["--method", "finetune"], "needs --init"),
])
def test_cli_impossible_training_options_fail_before_any_work(capsys, tmp_path, argv, message):
    assert main(["train", "--runs-dir", str(tmp_path / "runs"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "escaped").exists() and not any((tmp_path / "runs").glob("*"))


def test_finetune_starts_from_the_init_run(trained, tmp_path):
    """--method finetune trains the --init run on (its data, model and split):
    at a vanishing learning rate its weights stay the init run's, where a
    fresh run's are far from them."""
    run, config, _ = trained
    init = {k: v.detach() for k, v in load_trained(run.root)[0].named_parameters()}

    def distance(root) -> float:
        model = load_trained(root)[0]
        return max(float((p.detach() - init[k]).norm() / init[k].norm().clamp(min=1e-8))
                   for k, p in model.named_parameters())

    ft = make_config(None, 48, epochs=1, batch_size=32, seed=1, lr=1e-9, augment="jpeg",
                     method="finetune", finetune=dict(init=str(run.root)))
    m = train(ft, tmp_path / "ft", progress=False)
    saved = RunDir(tmp_path / "ft").read_config()
    assert saved["data"] == config["data"] and saved["model"] == config["model"]  # --size 48 is not used
    assert m["counts"] == json.loads(run.metrics.read_text())["counts"]
    train(make_config(None, 32, epochs=1, batch_size=32, seed=1, lr=1e-9), tmp_path / "fresh", progress=False)
    assert distance(tmp_path / "ft") < 1e-4 < 1e-1 < distance(tmp_path / "fresh")



@pytest.mark.slow
def test_progress_lines_reach_a_pipe_while_the_command_runs(tmp_path):
    """A CI log (stdout a pipe, not a terminal) gets each progress line as it
    happens, not all of them when the process exits (block buffering)."""
    import os
    import subprocess
    import sys
    import time

    assert main(["train", "--epochs", "1", "--size", "32", "--runs-dir", str(tmp_path), "--name", "r"]) == 0
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as in most CI runners
    proc = subprocess.Popen([sys.executable, "-m", "tinyfake", "export", str(tmp_path / "r"), "--no-eval"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        first = proc.stdout.readline()
        seen = time.monotonic()
        assert "reading the run's faces" in first
        proc.communicate(timeout=600)
        # the export (onnx2tf: tens of seconds) ran after the line arrived, not before it
        assert time.monotonic() - seen > 5
    finally:
        proc.kill()
        proc.wait()
