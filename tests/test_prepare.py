"""`tinyfake prepare` (issue 14): a generated DFDC video tree (short videos
with a face pasted in) is cropped by 2 worker processes into WebDataset
shards; a run killed part-way is finished by the same command, which
redoes nothing that was done; the shards hold every face with its label,
group and category, and train like the tree itself."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tinyfake.cli import main
from tinyfake.data import load_dataset, split_dataset
from tinyfake.data.layouts import common, load_layout

REPO = Path(__file__).resolve().parents[1]
N_VIDEOS, FRAMES = 16, 3


@pytest.fixture(scope="module")
def face():
    from skimage import data

    from tinyfake.data import faces
    img = data.astronaut()
    left, top, s = faces.square_crop_box(faces.detect_face(img), img.shape, 0.6)
    return cv2.resize(img[top:top + s, left:left + s], (90, 90), interpolation=cv2.INTER_AREA)


def _video(path: Path, face, frames: int, with_face: bool = True) -> None:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for i in range(frames):
        f = np.full((120, 160, 3), 80, np.uint8)
        if with_face:
            f[15 + i:105 + i, 30 + 2 * i:120 + 2 * i] = face
        out.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    out.release()


@pytest.fixture(scope="module")
def tree(tmp_path_factory, face):
    """A DFDC tree: 8 real videos, each with a fake made from it, in 2 parts;
    one fake shows no face."""
    root = tmp_path_factory.mktemp("dfdc")
    for part in ("dfdc_train_part_0", "dfdc_train_part_1"):
        (root / part).mkdir()
        meta = {}
        for k in range(N_VIDEOS // 4):
            real, fake = f"{part[-1]}real{k}.mp4", f"{part[-1]}fake{k}.mp4"
            _video(root / part / real, face, 8)
            _video(root / part / fake, face, 8, with_face=(part[-1], k) != ("1", 0))
            meta[real] = {"label": "REAL", "split": "train", "original": None}
            meta[fake] = {"label": "FAKE", "split": "train", "original": real}
        (root / part / "metadata.json").write_text(json.dumps(meta))
    return root


def _prepare_cmd(tree: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "tinyfake", "prepare", "--data", str(tree), "--out", str(out),
            "--workers", "2", "--frames-per-video", str(FRAMES), "--size", "48", "--videos-per-shard", "1"]


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO), "TINYFAKE_CACHE": "/nonexistent-cache-unused"}


def _done(out: Path) -> list[Path]:
    return sorted(out.glob("faces-*.json"))


def test_prepare_is_parallel_resumable_and_keeps_labels_groups_and_categories(tree, tmp_path, monkeypatch):
    out = tmp_path / "shards"
    # Kill the whole job (main process and workers) once the first shards are written.
    proc = subprocess.Popen(_prepare_cmd(tree, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=_env(), start_new_session=True)
    deadline = time.time() + 300
    while len(_done(out)) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p.name: p.stat().st_mtime_ns for p in _done(out)}
    assert 2 <= len(first) < N_VIDEOS, f"the kill came too late: {len(first)} shards done"

    # Training refuses a half-prepared folder in one line.
    from tinyfake.errors import UserError
    with pytest.raises(UserError, match="prepared only in part"):
        load_dataset(str(out), 32)

    rerun = subprocess.run(_prepare_cmd(tree, out), capture_output=True, text=True, timeout=600, env=_env())
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{len(first)} of {N_VIDEOS} shards already done" in rerun.stdout
    assert {p.name: p.stat().st_mtime_ns for p in _done(out) if p.name in first} == first  # not redone
    assert not list(out.glob(".*.tmp"))
    assert "1 videos with no face" in rerun.stdout and "1fake0.mp4" in rerun.stdout

    # The shards: plain tars of <key>.png + <key>.json, every sampled face of every video.
    with tarfile.open(out / "faces-000000.tar") as tar:
        names = tar.getnames()
    assert len(names) == 2 * FRAMES and {Path(n).suffix for n in names} == {".png", ".json"}
    ds = load_dataset(str(out), 32)
    assert len(ds) == (N_VIDEOS - 1) * FRAMES and ds.size == 32
    from tinyfake.data.layouts import find_items
    _, items = find_items(tree)
    want = {it.path.relative_to(tree).as_posix(): it for it in items}
    for name, y, g, c in zip(ds.name, ds.y, ds.group, ds.category):
        video = name.split("#")[0]
        assert (y, g, c) == (want[video].label, want[video].group, want[video].category)
    # The faces training on the tree itself would see (crops made at 48 px, not 32: pixels differ).
    monkeypatch.setattr(common, "CACHE", tmp_path / "cache")
    direct = load_layout(tree, 32, frames_per_video=FRAMES)
    assert sorted(zip(ds.name, ds.y, ds.group)) == sorted(zip(direct.name, direct.y, direct.group))
    s = split_dataset(ds, seed=0)
    sides = [set(p.group.tolist()) for p in (s.train, s.val, s.test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])


def test_prepare_refuses_other_options_into_a_prepared_folder(tree, tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["prepare", "--data", str(tree), "--out", str(out), "--workers", "1",
                 "--frames-per-video", "1", "--size", "32"]) == 0
    capsys.readouterr()
    assert main(["prepare", "--data", str(tree), "--out", str(out), "--frames-per-video", "2",
                 "--size", "32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "prepared from other data or options" in err[0], err
    assert main(["prepare", "--data", str(tree), "--out", str(out), "--workers", "0"]) == 2
    assert "--workers must be from 1" in capsys.readouterr().err
    assert main(["prepare", "--data", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    from tinyfake.errors import UserError
    with pytest.raises(UserError, match="holds 32 px faces"):
        load_dataset(str(out), 64)
