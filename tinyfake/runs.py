"""The run directory `runs/<name>/`: where every stage reads and writes.

Stages talk through these files only, so any stage can be re-run alone and
every artifact can be inspected.
"""
from __future__ import annotations

import shutil
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from tinyfake.errors import UserError
from tinyfake.files import write_atomic
from tinyfake.provenance import Manifest

RUNS_ROOT = Path("runs")
LOCK = ".lock"
_held: dict[Path, object] = {}  # run -> its FileLock, so that one process may nest its stages


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

    def result_path(self, stem: str, data: str | None = None, limit: int | None = None,
                    suffix: str = ".json") -> Path:
        """`<stem>.json` for the run's whole test split, `<stem>_<dataset>` for
        other data, a `_limit<N>` suffix for a sample: no partial result ever
        replaces a whole one (eval.json, report.json)."""
        name = stem if data is None else f"{stem}_{Path(data).stem}"
        return self.root / (f"{name}_limit{limit}{suffix}" if limit is not None else f"{name}{suffix}")

    def widest_report(self) -> Path | None:
        """report.json (the whole test split) or, short of it, the report_limit<N>.json of the largest N."""
        if self.report_json.exists():
            return self.report_json
        samples = sorted(self.root.glob("report_limit*.json"), key=lambda p: int(p.stem.split("_limit")[1]))
        return samples[-1] if samples else None
    manifest = property(lambda self: Manifest(self.root))  # what each artifact was made from

    def export_inputs(self) -> dict[str, Path]:
        """What the int8 export is made from (tinyfake.provenance)."""
        return {"model.pt": self.model_pt, "config.toml": self.config}

    def require_current_export(self) -> None:
        """One line refusing a model_int8.tflite exported from another model.pt."""
        if not (self.model_pt.exists() and self.tflite.exists()):
            return
        fix = f"run `tinyfake export {self.root}` (or `tinyfake build --model {self.root}`) again"
        if self.manifest.get("export") is None:  # exported before runs had manifests: times tell
            if self.model_pt.stat().st_mtime > self.tflite.stat().st_mtime:
                raise UserError(f"{self.tflite} is stale (model.pt is newer); {fix}")
            return
        self.manifest.require_fresh("export", self.export_inputs(), what=str(self.tflite), fix=fix)

    @contextmanager
    def lock(self):
        """Hold the run for writing: a second tinyfake command on the same run
        fails at once with one line instead of interleaving its files."""
        from filelock import FileLock, Timeout

        new = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        key = self.root.resolve()
        lock = _held.setdefault(key, FileLock(key / LOCK))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise UserError(f"{self.root} is in use by another tinyfake command; wait for it "
                            "to finish, or use another run") from None
        try:
            yield self
        finally:
            lock.release()
            if new and not lock.is_locked and [p.name for p in self.root.iterdir()] == [LOCK]:
                shutil.rmtree(self.root)  # a command that failed before writing leaves no run behind

    def require_trained(self) -> None:
        """One clear line for a run that has no finished model."""
        if self.model_pt.exists():
            return
        if self.checkpoint.exists():
            raise UserError(f"{self.root} is incomplete: its training stopped before the end (it has "
                            f"a checkpoint, no model.pt); continue it with `tinyfake train --resume {self.root}`")
        raise UserError(f"{self.root} has no model.pt; train it with `tinyfake train`")

    def in_use(self) -> bool:
        """Whether another tinyfake command holds the run's lock now (a training, an export, ...)."""
        from filelock import FileLock, Timeout

        if not (self.root / LOCK).exists():
            return False
        probe = FileLock(self.root / LOCK)
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return True
        probe.release()
        return False

    def holds_training(self) -> bool:
        return self.model_pt.exists() or self.checkpoint.exists()

    def begin_training(self, config: dict) -> None:
        """A fresh training run: whatever an earlier run left here (its model,
        exports, compiled C, firmware, reports) is not its result, so it goes."""
        self.root.mkdir(parents=True, exist_ok=True)
        ours = self.config.exists() or self.model_pt.exists() or self.checkpoint.exists()
        if not ours and any(p.name != LOCK for p in self.root.iterdir()):
            raise UserError(f"{self.root} holds files but is not a tinyfake run (no config.toml, "
                            "model.pt or checkpoint.pt); train into another run name")
        for old in self.root.iterdir():
            if old.name == LOCK:
                continue
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            else:
                old.unlink()
        self.write_config(config)

    def read_config(self) -> dict:
        with open(self.config, "rb") as f:
            return tomllib.load(f)

    def write_config(self, config: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.config, tomli_w.dumps(config).encode())


def only_run(needs: str, how_to_name: str, runs_root: Path = RUNS_ROOT, log=print) -> RunDir:
    """The run a command takes when given none: the one run under runs/ that
    holds `needs` (a file inside it), said aloud. With several it refuses and
    names them, rather than guess which one the user means."""
    found = sorted((runs_root / p.relative_to(runs_root).parts[0] for p in runs_root.glob(f"*/{needs}")),
                   key=lambda r: (r / needs).stat().st_mtime, reverse=True)
    if not found:
        raise UserError(f"no run under {runs_root}/ holds {needs}; {how_to_name}")
    if len(found) > 1:
        names = ", ".join(str(r) for r in found[:4]) + (", ..." if len(found) > 4 else "")
        raise UserError(f"{len(found)} runs under {runs_root}/ hold {needs} (newest first: {names}); "
                        f"{how_to_name}")
    log(f"no run given: taking {found[0]}, the only run with {needs}")
    return RunDir(found[0])
