"""Provenance: no stage ships an artifact made from inputs that changed since
(tinyfake.provenance), retraining needs --force, and one writer per run."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from tinyfake.cli import main
from tinyfake.errors import UserError
from tinyfake.provenance import Manifest
from tinyfake.runs import RunDir


def _one_line_error(capsys, *parts):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for part in parts:
        assert part in err[0], err[0]
    return err[0]


# ---- the manifest itself ------------------------------------------------------

def test_manifest_names_the_first_difference(tmp_path):
    src, out = tmp_path / "model.pt", tmp_path / "model_int8.tflite"
    src.write_bytes(b"weights")
    out.write_bytes(b"int8")
    m = Manifest(tmp_path)
    inputs, options = {"model.pt": src}, {"calib_images": 300}
    assert m.why_stale("export", inputs, options) == "no record of how it was made"
    m.record("export", inputs, options, [out])
    assert m.why_stale("export", inputs, options) is None
    record = json.loads((tmp_path / "manifest.json").read_text())["export"]
    assert record["tinyfake"] and set(record["outputs"]) == {"model_int8.tflite"}

    assert m.why_stale("export", inputs, {"calib_images": 64}) == "option calib_images changed (300 -> 64)"
    src.write_bytes(b"retrained")
    assert m.why_stale("export", inputs, options) == "model.pt changed"
    src.write_bytes(b"weights")
    out.write_bytes(b"edited")
    assert m.why_stale("export", inputs, options) == "model_int8.tflite was changed after it was made"
    out.unlink()
    assert m.why_stale("export", inputs, options) == "model_int8.tflite is missing"
    src.unlink()
    assert m.why_stale("export", inputs, options) == "model.pt is missing"


def test_a_damaged_manifest_makes_every_stage_run_again(tmp_path):
    (tmp_path / "a").write_bytes(b"a")
    m = Manifest(tmp_path)
    m.record("compile", {"a": tmp_path / "a"}, {}, [])
    (tmp_path / "manifest.json").write_text("{ not json")
    assert m.why_stale("compile", {"a": tmp_path / "a"}, {}) == "no record of how it was made"


def test_a_consumer_refuses_a_stale_artifact_in_one_line(tmp_path):
    run = RunDir(tmp_path)
    run.model_pt.write_bytes(b"weights")
    run.config.write_text("")
    run.tflite.write_bytes(b"int8")
    run.require_current_export()  # no record, and the export is newer: passes
    run.manifest.record("export", run.export_inputs(), {}, [run.tflite])
    run.require_current_export()
    run.model_pt.write_bytes(b"other weights")
    with pytest.raises(UserError, match=r"model_int8.tflite is stale \(model.pt changed since it was made\); "
                                        r"run `tinyfake export"):
        run.require_current_export()


def test_a_second_writer_fails_at_once_with_one_line(tmp_path, capsys):
    run = RunDir(tmp_path / "r")
    run.root.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from pathlib import Path; from tinyfake.runs import RunDir\n"
         f"with RunDir(Path({str(run.root)!r})).lock():\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match="is in use by another tinyfake command"):
            with run.lock():
                pass
    finally:
        holder.kill()
        holder.wait()
    with run.lock():  # free again once the other writer is gone
        with run.lock():  # and one process may nest its stages
            pass


def test_training_into_a_folder_that_is_not_a_run_loses_nothing(tmp_path):
    keep = tmp_path / "mine.txt"
    keep.write_text("not tinyfake's")
    with pytest.raises(UserError, match="is not a tinyfake run"):
        RunDir(tmp_path).begin_training({"data": {}, "model": {}, "train": {}})
    assert keep.read_text() == "not tinyfake's"


def test_a_fresh_training_leaves_nothing_of_the_run_before(tmp_path):
    run = RunDir(tmp_path)
    run.config.write_text("")
    for old in (run.model_pt, run.tflite, run.report_json):
        old.write_bytes(b"old")
    (run.gen).mkdir()
    (run.gen / "model.c").write_text("old")
    run.manifest.record("export", {}, {}, [run.tflite])
    run.begin_training({"data": {}, "model": {}, "train": {}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_retraining_a_run_needs_force(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = RunDir(tmp_path / "runs" / "r")
    run.root.mkdir(parents=True)
    run.config.write_text("")
    run.model_pt.write_bytes(b"trained")
    # (--epochs 1: without the check each would retrain, briefly)
    for argv in (["train", "--name", "r", "--size", "32", "--epochs", "1"],
                 ["build", "--name", "r", "--epochs", "1", "--limit", "1"]):
        assert main(argv) == 2
        _one_line_error(capsys, "already holds a trained model", "--force")
    assert run.model_pt.read_bytes() == b"trained"


# ---- the stages, end to end ----------------------------------------------------

def _train(runs, name, *extra):
    return main(["train", "--runs-dir", str(runs), "--name", name, "--size", "32", "--epochs", "1",
                 "--batch-size", "32", *extra])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of one training that differ in one option (the seed)."""
    root = tmp_path_factory.mktemp("runs")
    assert _train(root, "r") == 0
    assert _train(root, "other", "--seed", "1") == 0
    return root


def _copy(runs, name: str) -> RunDir:
    """A copy of the trained run r, for one test to change."""
    shutil.copytree(runs / "r", runs / name)
    return RunDir(runs / name)


def _stages(out: str) -> dict[str, str]:
    """`tinyfake build` output -> {stage: 'up to date' | what made it run}."""
    said, stage = {}, None
    for line in out.splitlines():
        if line.startswith("== "):
            stage = line[3:].split(":")[0]
        elif stage in ("export", "compile", "firmware") and stage not in said and line.strip():
            said[stage] = line.strip()
    return said


@pytest.mark.slow
def test_build_reruns_exactly_the_stages_after_what_changed(runs, capsys):
    run = _copy(runs, "b")
    build = ["build", "--model", str(run.root), "--limit", "2"]
    assert main(build) == 0
    first = _stages(capsys.readouterr().out)
    assert all(s.startswith("no record of how it was made") for s in first.values()), first

    assert main(build) == 0  # nothing changed: nothing is made again
    assert all(s.startswith("up to date") for s in _stages(capsys.readouterr().out).values())

    # The compiled C edited by hand: compiled again, which writes the same C
    # as before, so the firmware (made from that C) is still up to date.
    model_c = run.gen / "model.c"
    model_c.write_text(model_c.read_text() + "\n/* edited */\n")
    assert main(build) == 0
    said = _stages(capsys.readouterr().out)
    assert said["export"].startswith("up to date")
    assert said["compile"].startswith("gen/model.c was changed after it was made")
    assert said["firmware"].startswith("up to date")

    # model.pt from a training with one option changed: every stage after training
    shutil.copy(runs / "other" / "model.pt", run.model_pt)
    assert main(build) == 0
    said = _stages(capsys.readouterr().out)
    assert said["export"].startswith("model.pt changed"), said
    assert said["compile"].startswith("model_int8.tflite changed"), said
    assert said["firmware"].startswith("gen/"), said


@pytest.mark.slow
def test_verify_refuses_what_a_retraining_left_stale(runs, capsys):
    run = _copy(runs, "v")
    verify = ["verify", "--simulate", "--run", str(run.root), "--limit", "2"]
    assert main(["build", "--model", str(run.root), "--limit", "2"]) == 0
    assert main(verify) == 0
    capsys.readouterr()

    # model.pt replaced behind the pipeline's back: verify refuses the old export
    weights = run.model_pt.read_bytes()
    shutil.copy(runs / "other" / "model.pt", run.model_pt)
    assert main(verify) == 2
    _one_line_error(capsys, "model_int8.tflite is stale (model.pt changed since it was made)")
    run.model_pt.write_bytes(weights)

    # a new training into the run needs --force, and then leaves nothing of the old one
    sample_report = run.result_path("report", limit=2)
    report = sample_report.read_bytes()
    assert _train(runs, "v", "--seed", "2") == 2
    _one_line_error(capsys, "already holds a trained model", "--force")
    assert run.model_pt.read_bytes() == weights and sample_report.read_bytes() == report
    assert _train(runs, "v", "--seed", "2", "--force") == 0
    capsys.readouterr()
    for stale in (run.tflite, run.gen, run.fw, sample_report, run.root / "manifest.json"):
        assert not stale.exists(), stale
    assert main(verify) == 2
    _one_line_error(capsys, "gen/model.h not found", "compile")


def test_build_with_a_model_refuses_training_options(runs, capsys):
    assert main(["build", "--model", str(runs / "r"), "--size", "48"]) == 2
    _one_line_error(capsys, "--size train a new model", "takes that run as it was trained")


def test_a_stopped_training_is_resumed_not_overwritten(tmp_path, capsys):
    run = RunDir(tmp_path / "stopped")
    run.root.mkdir()
    run.checkpoint.write_bytes(b"epoch 3")
    assert _train(tmp_path, "stopped") == 2
    _one_line_error(capsys, "holds a training that stopped", "--resume")
    assert run.checkpoint.read_bytes() == b"epoch 3"


def test_time_is_not_provenance(tmp_path):
    """A file touched but not changed is still up to date (hashes, not mtimes)."""
    src = tmp_path / "in"
    src.write_bytes(b"x")
    m = Manifest(tmp_path)
    m.record("s", {"in": src}, {}, [])
    later = time.time() + 100
    os.utime(src, (later, later))
    assert m.why_stale("s", {"in": src}, {}) is None


def test_a_command_given_no_run_takes_only_the_only_one(tmp_path, monkeypatch, capsys):
    from PIL import Image
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (64, 64)).save(tmp_path / "face.png")
    for argv in (["export"], ["verify", "--simulate"], ["detect", str(tmp_path / "face.png")]):
        assert main(argv) == 2
        _one_line_error(capsys, "no run under runs/ holds")
    for name in ("a", "b"):
        (tmp_path / "runs" / name / "gen").mkdir(parents=True)
        (tmp_path / "runs" / name / "gen" / "model.h").write_text("")
        (tmp_path / "runs" / name / "config.toml").write_text("")
    os.utime(tmp_path / "runs" / "a" / "gen" / "model.h", (time.time() + 5,) * 2)
    assert main(["verify", "--simulate"]) == 2
    _one_line_error(capsys, "2 runs under runs/ hold gen/model.h (newest first: runs/a, runs/b)", "--run")
    shutil.rmtree(tmp_path / "runs" / "b")
    from tinyfake.harness.verify import harness_run
    assert harness_run(None).root == RunDir(tmp_path / "runs" / "a").root.relative_to(tmp_path)
    assert "taking runs/a, the only run with gen/model.h" in capsys.readouterr().out


# ---- reruns ---------------------------------------------------------------------

def test_a_config_reruns_its_run_to_the_same_weights(tmp_path, capsys):
    import tomllib

    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    data = tmp_path / "faces.npz"
    np.savez(data, x=rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8), y=np.arange(48) % 2,
             group=np.arange(48) // 2)
    args = ["--data", str(data), "--size", "32", "--epochs", "1", "--batch-size", "8"]
    assert _train(tmp_path, "r", *args) == 0
    config = tmp_path / "r" / "config.toml"
    made = tomllib.loads(config.read_text())["made"]
    assert made["tinyfake"] and len(made["data_sha256"]) == 64
    assert main(["train", "--runs-dir", str(tmp_path), "--config", str(config)]) == 0
    a, b = (torch.load(tmp_path / r / "model.pt", weights_only=True) for r in ("r", "r_rerun"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    first, again = (tomllib.loads((tmp_path / r / "config.toml").read_text()) for r in ("r", "r_rerun"))
    assert {k: v for k, v in first.items() if k != "made"} == {k: v for k, v in again.items() if k != "made"}
    assert again["made"]["data_sha256"] == made["data_sha256"]
    capsys.readouterr()

    assert main(["train", "--runs-dir", str(tmp_path), "--config", str(config), "--lr", "0.1"]) == 2
    _one_line_error(capsys, "--config gives every training option; drop --lr")
    np.savez(data, x=rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8), y=np.arange(48) % 2,
             group=np.arange(48) // 2)  # other faces at the same path
    assert main(["train", "--runs-dir", str(tmp_path), "--config", str(config), "--name", "r2"]) == 2
    _one_line_error(capsys, "is not what this run was trained on")
    assert not (tmp_path / "r2" / "model.pt").exists()
