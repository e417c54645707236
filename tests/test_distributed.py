"""Training at scale (issue 14): torchrun data parallelism, devices, and
runs that survive a kill. Each run here trains the default PhiNet on the
embedded demo faces at 32 px for a few epochs (seconds each)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tinyfake.cli import main
from tinyfake.runs import LOCK, RunDir
from tinyfake.train.supervised import load_trained, predict

PY = Path(sys.executable)
TORCHRUN = PY.parent / "torchrun"
REPO = Path(__file__).resolve().parents[1]
SMALL = ["--size", "32", "--lr", "3e-3", "--patience", "50"]


def _env() -> dict:
    # One thread per process: the 2-process job and the 1-process run it is
    # compared with reduce in a comparable order; tinyfake itself from this checkout.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _train(runs: Path, name: str, *args: str, torchrun: int = 0) -> subprocess.CompletedProcess:
    cmd = ([str(TORCHRUN), "--standalone", "--nproc_per_node", str(torchrun)] if torchrun else [str(PY)])
    cmd += ["-m", "tinyfake", "train", *SMALL, "--runs-dir", str(runs), "--name", name, "--threads", "1", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_env())


def _faces(n: int = 48) -> np.ndarray:
    return (np.random.default_rng(7).random((n, 32, 32, 3)) * 255).astype(np.uint8)


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not installed")
@pytest.mark.parametrize("method", ["supervised", "simclr"])
def test_two_torchrun_processes_train_as_one_process_with_their_global_batch(tmp_path, method):
    """gloo on the CPU: 2 ranks x batch 8 == 1 process x batch 16 (same seed,
    so the same global batches, augmentation and dropout), to float rounding.
    simclr: its pre-training too (NT-Xent over the gathered global batch)."""
    def batch(n):
        extra = ["--method", "simclr", "--pretrain-epochs", "2", "--probe-epochs", "2",
                 "--pretrain-batch-size", str(n)] if method == "simclr" else []
        return ["--epochs", "3", "--batch-size", str(n), *extra]
    ddp = _train(tmp_path, "ddp", *batch(8), torchrun=2)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = _train(tmp_path, "one", *batch(16))
    assert one.returncode == 0, one.stderr[-3000:]
    assert ddp.stdout.count("trained ") == 1  # only rank 0 reports and writes
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir() if p.name != LOCK) == \
        ["config.toml", "metrics.json", "model.pt"]

    a, _ = load_trained(RunDir.existing(tmp_path / "ddp"))
    b, _ = load_trained(RunDir.existing(tmp_path / "one"))
    sa, sb = a.state_dict(), b.state_dict()
    # Weights (conv, linear, BatchNorm scale) agree to rounding, as a whole
    # tensor: Adam normalises each step, so one weight whose gradient is near
    # zero can move a full step (lr) either way on rounding noise alone; a
    # wrong reduction (unaveraged or per-rank gradients) is off by far more.
    # Conv biases that feed a BatchNorm are left out: their true gradient is
    # zero, so they are all such noise, which the BatchNorm's running mean
    # then cancels; the predictions below include them.
    for k in sa:
        if k.endswith("weight"):
            rel = ((sa[k] - sb[k]).norm() / sb[k].norm()).item()
            assert rel < 1e-2, (k, rel, (sa[k] - sb[k]).abs().max())
    # Predictions: the 2-process job is far closer to its 1-process twin than
    # a run that differs only in its batch (8: what per-rank batches without
    # the global reduction would train). An absolute bound would be a fact
    # about one machine: Adam turns the rounding noise in the BatchNorm-fed
    # conv biases into steps that the lagging running mean only partly cancels.
    other = _train(tmp_path, "b8", *batch(8))
    assert other.returncode == 0, other.stderr[-3000:]
    c, _ = load_trained(RunDir.existing(tmp_path / "b8"))
    x = _faces()
    same = np.abs(predict(a, x) - predict(b, x)).max()
    assert same < 0.2 * np.abs(predict(c, x) - predict(b, x)).max(), same

    # Validation is scored on the ranks' shards and gathered: the same loss
    # (the AUC of 30 faces with near-equal scores flips with rounding).
    assert _history(tmp_path / "ddp", "val_loss") == pytest.approx(_history(tmp_path / "one", "val_loss"), abs=1e-4)


def _history(run: Path, key: str) -> list[float]:
    return [h[key] for h in json.loads((run / "metrics.json").read_text())["history"] if key in h]


def _kill_after_first_checkpoint(runs: Path, name: str, *args: str) -> None:
    cmd = [str(PY), "-m", "tinyfake", "train", *SMALL, "--runs-dir", str(runs), "--name", name,
           "--threads", "1", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    checkpoint = runs / name / "checkpoint.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not (runs / name / "model.pt").exists(), "the run ended before the kill"


def test_a_killed_run_is_incomplete_and_resumes_to_the_uninterrupted_weights(tmp_path, capsys):
    epochs = ["--epochs", "6", "--batch-size", "16"]
    _kill_after_first_checkpoint(tmp_path, "killed", *epochs)
    killed = tmp_path / "killed"

    for argv in (["export", str(killed)], ["build", "--model", str(killed)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "incomplete" in err[0] and f"tinyfake train --resume {killed}" in err[0], err

    resumed = subprocess.run([str(PY), "-m", "tinyfake", "train", "--resume", str(killed), "--threads", "1"],
                             capture_output=True, text=True, timeout=600, env=_env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after epoch" in resumed.stderr + resumed.stdout
    assert not (killed / "checkpoint.pt").exists()
    whole = _train(tmp_path, "whole", *epochs)
    assert whole.returncode == 0, whole.stderr[-3000:]

    sa = torch.load(killed / "model.pt", weights_only=True)
    sb = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert _history(killed, "val_auc") == _history(tmp_path / "whole", "val_auc")
    assert _history(killed, "train_loss") == _history(tmp_path / "whole", "train_loss")
    assert len(_history(killed, "epoch")) == 6


def _one_line(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tinyfake: error: "), err
    return err[0]


def test_resume_refuses_what_it_cannot_continue(tmp_path, capsys):
    run = RunDir(tmp_path / "r")
    from tinyfake.train import make_config
    run.write_config(make_config(None, 32))
    assert "no checkpoint.pt to resume from" in _one_line(capsys, ["train", "--resume", str(run.root)])
    run.checkpoint.write_bytes(b"PK\x03\x04 cut short")
    assert "not a readable checkpoint" in _one_line(capsys, ["train", "--resume", str(run.root), "--threads", "1"])
    run.write_config(make_config(None, 32, method="simclr"))
    assert "starts again" in _one_line(capsys, ["train", "--resume", str(run.root)])
    assert "not a tinyfake run directory" in _one_line(capsys, ["train", "--resume", str(tmp_path / "nothing")])


def test_devices_this_machine_does_not_have_are_one_line(tmp_path, capsys):
    err = _one_line(capsys, ["train", "--runs-dir", str(tmp_path), "--device", "tpu"])
    assert "--device must be auto, cpu, cuda or cuda:N" in err
    if not torch.cuda.is_available():
        assert "no CUDA GPU" in _one_line(capsys, ["train", "--runs-dir", str(tmp_path), "--device", "cuda:0"])
    assert not any(tmp_path.iterdir())  # refused before any data was read or any run written


def test_a_fresh_run_clears_what_an_earlier_run_left(tmp_path):
    run = RunDir(tmp_path / "r")
    run.root.mkdir()
    for stale in (run.model_pt, run.metrics, run.checkpoint):
        stale.write_bytes(b"old")
    from tinyfake.train import make_config
    run.begin_training(make_config(None, 32))
    assert not run.model_pt.exists() and not run.metrics.exists() and not run.checkpoint.exists()
    assert run.config.exists()
