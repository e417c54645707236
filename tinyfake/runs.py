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
    model_pt = property(lambda self: self.root / "model.pt")
    metrics = property(lambda self: self.root / "metrics.json")
    onnx = property(lambda self: self.root / "model.onnx")
    tflite = property(lambda self: self.root / "model_int8.tflite")
    model_data_cc = property(lambda self: self.root / "model_data.cc")
    model_data_h = property(lambda self: self.root / "model_data.h")
    gen = property(lambda self: self.root / "gen")
    fw = property(lambda self: self.root / "fw")
    report_json = property(lambda self: self.root / "report.json")
    report_md = property(lambda self: self.root / "report.md")

    def read_config(self) -> dict:
        with open(self.config, "rb") as f:
            return tomllib.load(f)

    def write_config(self, config: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.config, "wb") as f:
            tomli_w.dump(config, f)
