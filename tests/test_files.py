"""Artifacts are written whole or not at all (tinyfake.files.write_atomic):
a stage interrupted mid-write leaves the previous file, never a partial one
that a later stage would take for a good one."""
import os

import pytest

from tinyfake.files import write_atomic


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "model_int8.tflite"
    write_atomic(target, b"old model")

    def interrupted(src, dst):  # Ctrl-C between writing the bytes and renaming them
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"new model, half")
    assert target.read_bytes() == b"old model"
    monkeypatch.undo()
    write_atomic(target, "new model")
    assert target.read_bytes() == b"new model"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["model_int8.tflite"]
