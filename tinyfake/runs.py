"""The run directory `runs/<name>/`: where every stage reads and writes.

Stages talk through these files only, so any stage can be re-run alone and
every artifact can be inspected.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from tinyfake.errors import UserError
from tinyfake.files import write_atomic

RUNS_ROOT = Path("runs")


@dataclass(frozen=True)
class RunDir:
    root: Path

    @classmethod
    def named(cls, name: str) -> "RunDir":
        return cls(RUNS_ROOT / name)

    @classmethod
    def existing(cls, path: str | Path) -> "RunDir":
        """A run directory given by the user; it must hold a trained model."""
        run = cls(Path(path))
        if not run.config.exists():
            raise UserError(f"{path} is not a tinyfake run directory (no config.toml); "
                            "train one with `tinyfake train`")
        return run

    config = property(lambda self: self.root / "config.toml")
    model_pt = property(lambda self: self.root / "model.pt")  # written last: the run finished
    checkpoint = property(lambda self: self.root / "checkpoint.pt")  # while training: --resume
    metrics = property(lambda self: self.root / "metrics.json")
    onnx = property(lambda self: self.root / "model.onnx")
    tflite = property(lambda self: self.root / "model_int8.tflite")
    model_data_cc = property(lambda self: self.root / "model_data.cc")
    model_data_h = property(lambda self: self.root / "model_data.h")
    gen = property(lambda self: self.root / "gen")
    fw = property(lambda self: self.root / "fw")
    report_json = property(lambda self: self.root / "report.json")
    report_md = property(lambda self: self.root / "report.md")

    def require_trained(self) -> None:
        """One clear line for a run that has no finished model."""
        if self.model_pt.exists():
            return
        if self.checkpoint.exists():
            raise UserError(f"{self.root} is incomplete: its training stopped before the end (it has "
                            f"a checkpoint, no model.pt); continue it with `tinyfake train --resume {self.root}`")
        raise UserError(f"{self.root} has no model.pt; train it with `tinyfake train`")

    def begin_training(self, config: dict) -> None:
        """A fresh training run: whatever an earlier run left here is not its result."""
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in (self.model_pt, self.metrics, self.checkpoint):
            stale.unlink(missing_ok=True)
        self.write_config(config)

    def read_config(self) -> dict:
        with open(self.config, "rb") as f:
            return tomllib.load(f)

    def write_config(self, config: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.config, tomli_w.dumps(config).encode())
