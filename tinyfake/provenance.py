"""What each artifact of a run was made from: `runs/<name>/manifest.json`.

Make-style: a stage records the hashes of its inputs, its options and the
hashes of what it wrote. A stage is up to date when all of them still match;
otherwise `why_stale` names the first difference ("model.pt changed"), and
the stage runs again and says so. Consumers refuse an artifact whose inputs
changed since it was made (`require_fresh`).
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tinyfake.errors import UserError
from tinyfake.files import write_atomic
from tinyfake.paths import CHECKOUT

MANIFEST = "manifest.json"


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tree_digest(paths) -> str:
    """One digest of many files, by name and content (the firmware sources)."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update(str(p).encode() + b"\0" + file_digest(p).encode())
    return h.hexdigest()


def maker() -> dict:
    """tinyfake's version, and its git commit when it runs from a checkout
    (with "+changes" when the checkout differs from that commit)."""
    from tinyfake import __version__

    made = {"tinyfake": __version__}
    try:
        if CHECKOUT is None:
            return made
        git = ["git", "-C", str(CHECKOUT)]
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode == 0 and commit.stdout.strip():
            dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            made["commit"] = commit.stdout.strip() + ("+changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return made


@dataclass
class Made:
    """One stage's record: inputs (name -> sha256), options, outputs (run-relative path -> sha256)."""
    inputs: dict[str, str]
    options: dict
    outputs: dict[str, str] = field(default_factory=dict)


class Manifest:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / MANIFEST

    def _read(self) -> dict:
        if not self.path.exists():
            return {}
        try:
            return json.loads(self.path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}  # a damaged manifest proves nothing: every stage runs again

    def _write(self, data: dict) -> None:
        write_atomic(self.path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())

    def stages(self) -> list[str]:
        return sorted(self._read())

    def get(self, stage: str) -> Made | None:
        entry = self._read().get(stage)
        if not isinstance(entry, dict):
            return None
        return Made(entry.get("inputs", {}), entry.get("options", {}), entry.get("outputs", {}))

    def why_stale(self, stage: str, inputs: dict[str, Path | str], options: dict) -> str | None:
        """None when `stage` is up to date; else the first reason it is not.
        inputs: name -> file (hashed) or a digest string already made."""
        made = self.get(stage)
        if made is None:
            return "no record of how it was made"
        for name, value in inputs.items():
            now = _digest(value)
            if now is None:
                return f"{name} is missing"
            if made.inputs.get(name) != now:
                return f"{name} changed"
        for key in sorted(set(options) | set(made.options)):
            if options.get(key) != made.options.get(key):
                return f"option {key} changed ({made.options.get(key)} -> {options.get(key)})"
        for rel, digest in made.outputs.items():
            out = self.root / rel
            if not out.exists():
                return f"{rel} is missing"
            if file_digest(out) != digest:
                return f"{rel} was changed after it was made"
        return None

    def record(self, stage: str, inputs: dict[str, Path | str], options: dict, outputs) -> None:
        data = self._read()
        data[stage] = {"inputs": {k: _digest(v) for k, v in inputs.items()}, "options": options,
                       "outputs": {str(Path(p).relative_to(self.root)): file_digest(p) for p in outputs},
                       **maker()}
        self._write(data)

    def forget(self, *stages: str) -> None:
        data = self._read()
        if any(s in data for s in stages):
            for s in stages:
                data.pop(s, None)
            self._write(data)

    def require_fresh(self, stage: str, inputs: dict[str, Path | str], what: str, fix: str) -> None:
        """Refuse, in one line, an artifact made from inputs that have changed
        since. An artifact with no record (made before manifests) passes."""
        made = self.get(stage)
        if made is None:
            return
        reason = self.why_stale(stage, inputs, made.options)
        if reason is not None:
            raise UserError(f"{what} is stale ({reason} since it was made); {fix}")


def _digest(value: Path | str) -> str | None:
    if isinstance(value, Path):
        return file_digest(value) if value.is_file() else None
    return value
