"""`tinyfake detect` on generated media: two faces (from skimage's astronaut
photo) moving over a background in a short video, an image, a faceless
video and a corrupt file; the tracker and the aggregation rule; and (slow)
the same per-face int8 outputs from the simulated board as from the host."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures.firmware_helpers import tiny_run

from tinyfake.cli import main
from tinyfake.detect.media import sample_indices
from tinyfake.detect.tracking import Tracker, aggregate

W, H, N = 320, 240, 20


def _face(side: int = 110) -> np.ndarray:
    from skimage import data

    from tinyfake.data import faces
    img = data.astronaut()
    left, top, s = faces.square_crop_box(faces.detect_face(img), img.shape, 0.6)
    return cv2.resize(img[top:top + s, left:left + s], (side, side), interpolation=cv2.INTER_AREA)


def make_video(path: Path, n: int = N, with_faces: bool = True) -> Path:
    """n frames 320x240: one face moving right and down, a mirrored one still."""
    face = _face()
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
    for i in range(n):
        frame = np.full((H, W, 3), (70, 90, 110), np.uint8)
        frame[::8] = 60  # some background texture
        if with_faces:
            frame[20 + 2 * i:130 + 2 * i, 10 + 3 * i:120 + 3 * i] = face
            frame[100:210, 190:300] = face[:, ::-1]
        out.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    out.release()
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    make_video(d / "clip.mp4")
    make_video(d / "empty.mp4", n=8, with_faces=False)
    cap = cv2.VideoCapture(str(d / "clip.mp4"))
    ok, frame = cap.read()
    assert ok
    cv2.imwrite(str(d / "still.png"), frame)
    return d


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real, tiny int8 model (RESHAPE -> FULLY_CONNECTED) at 32x32, compiled: seconds."""
    return tiny_run(tmp_path_factory.mktemp("runs") / "tiny32", size=32)


def test_video_gives_report_with_tracks_and_annotated_video(run, media, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["detect", str(media / "clip.mp4"), "--run", str(run.root), "--every", "1",
                 "--annotate", "--out", str(out)]) == 0
    assert "clip.mp4: " in capsys.readouterr().out
    r = json.loads((out / "clip.json").read_text())
    assert r["kind"] == "video" and r["backend"] == "host" and len(r["frames"]) == N
    assert r["media"]["frame_count"] == N and r["media"]["width"] == W
    # both faces found in (nearly) every frame, and tracked as two tracks
    assert sum(len(f["faces"]) for f in r["frames"]) >= 2 * N - 2
    long_tracks = [t for t in r["tracks"] if t["faces"] >= N - 2]
    assert len(long_tracks) == 2
    for f in r["frames"][0]["faces"]:
        assert len(f["box"]) == 4 and len(f["raw"]) == 1 and -128 <= f["raw"][0] <= 127
        assert 0 <= f["score"] <= 1 and f["label"] in ("real", "fake")
    o = r["overall"]
    scores = sorted((f["score"] for fr in r["frames"] for f in fr["faces"]), reverse=True)
    assert o["score"] == pytest.approx(np.mean(scores[:5])) and o["label"] in ("real", "fake")
    # the annotated video: readable, same frame size, one frame per sampled frame
    cap = cv2.VideoCapture(r["annotated"])
    assert cap.isOpened() and r["annotated"].endswith(".mp4")
    frames = []
    while True:
        ok, fr = cap.read()
        if not ok:
            break
        frames.append(fr)
    assert len(frames) == N and frames[0].shape == (H, W, 3)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"][0]["faces"] == o["faces"] and summary["failed"] == []


def test_compiled_c_equals_tflite_micro_per_face(run, media, tmp_path):
    reports = {}
    for backend in ("host", "tflite"):
        assert main(["detect", str(media / "clip.mp4"), "--run", str(run.root), "--frames", "5",
                     "--backend", backend, "--out", str(tmp_path / backend)]) == 0
        reports[backend] = json.loads((tmp_path / backend / "clip.json").read_text())
    raw = {b: [f["raw"] for fr in r["frames"] for f in fr["faces"]] for b, r in reports.items()}
    assert len(raw["host"]) >= 8 and raw["host"] == raw["tflite"]
    assert [fr["index"] for fr in reports["host"]["frames"]] == [0, 5, 10, 14, 19]


def test_folder_with_an_image_and_a_faceless_video(run, media, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["detect", str(media), "--run", str(run.root), "--annotate", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "empty.mp4: no face found" in printed
    empty = json.loads((out / "empty.json").read_text())
    assert empty["overall"]["label"] == "no face" and empty["overall"]["score"] is None
    assert "no face found in 8 sampled frame(s)" == empty["message"]
    still = json.loads((out / "still.json").read_text())
    assert still["kind"] == "image" and len(still["frames"][0]["faces"]) == 2
    assert [t["track"] for t in still["tracks"]] == [0, 1]
    img = cv2.imread(still["annotated"])
    assert img.shape == (H, W, 3)
    # a fake face's box is drawn in red (BGR 0,0,255), a real one's in green
    x, y, w, h = still["frames"][0]["faces"][0]["box"]
    color = (0, 0, 255) if still["frames"][0]["faces"][0]["label"] == "fake" else (0, 200, 0)
    assert tuple(int(v) for v in img[y + h // 2, x]) == color


def test_unreadable_media_and_missing_run_are_one_line_errors(run, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 20)
    assert main(["detect", str(bad), "--run", str(run.root), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read" in err and "broken.mp4" in err
    bad_img = tmp_path / "broken.jpg"
    bad_img.write_bytes(b"\xff\xd8 truncated")
    assert main(["detect", str(bad_img), "--run", str(run.root), "--out", str(tmp_path / "o")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["detect", str(bad), "--run", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_tracker_keeps_ids_by_overlap():
    t = Tracker()
    a, b = (10, 10, 50, 50), (200, 100, 60, 60)
    assert t.update([a, b]) == [0, 1]
    assert t.update([(206, 104, 60, 60), (14, 12, 50, 50)]) == [1, 0]  # order swapped, ids follow
    assert t.update([]) == []
    assert t.update([(18, 14, 50, 50)]) == [0]  # back after a missed frame
    assert t.update([(120, 10, 40, 40)]) == [2]  # no overlap: a new face


def test_aggregation_rule():
    frames = [{"index": 0, "faces": [{"track": 0, "score": 0.9}, {"track": 1, "score": 0.1}]},
              {"index": 3, "faces": [{"track": 0, "score": 0.7}, {"track": 1, "score": 0.2}]},
              {"index": 6, "faces": []}]
    tracks, overall = aggregate(frames, top_k=2, threshold=0.5)
    assert [(t["track"], t["faces"], t["label"]) for t in tracks] == [(0, 2, "fake"), (1, 2, "real")]
    assert tracks[0]["score"] == pytest.approx(0.8) and tracks[1]["last_frame"] == 3
    assert overall["score"] == pytest.approx(0.8) and overall["label"] == "fake"  # mean of 0.9, 0.7
    assert overall["frames"] == 3 and overall["frames_with_faces"] == 2 and overall["faces"] == 4
    _, overall = aggregate(frames, top_k=4, threshold=0.5)
    assert overall["score"] == pytest.approx(0.475) and overall["label"] == "real"


def test_frame_sampling():
    assert sample_indices(10, every=3) == [0, 3, 6, 9]
    assert sample_indices(5, frames=32) == [0, 1, 2, 3, 4]
    assert sample_indices(100, frames=3) == [0, 50, 99]  # 49.5 rounds to even


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A PhiNet trained one epoch at 32x32 on the demo set, exported and compiled."""
    from tinyfake.compiler import compile_model
    from tinyfake.export.pipeline import export_run
    from tinyfake.runs import RunDir
    from tinyfake.train import make_config, train

    run = RunDir(tmp_path_factory.mktemp("runs") / "phinet32")
    train(make_config(None, 32, epochs=1), run, threads=2, progress=False)
    export_run(run, calib_images=32)
    compile_model(run.tflite, run.gen, name="phinet32")
    return run


@pytest.mark.slow
def test_simulated_board_gives_the_host_scores(trained_run, media, tmp_path):
    reports = {}
    for backend in ("host", "simulate"):
        assert main(["detect", str(media / "clip.mp4"), "--run", str(trained_run.root), "--frames", "4",
                     "--backend", backend, "--out", str(tmp_path / backend)]) == 0
        reports[backend] = json.loads((tmp_path / backend / "clip.json").read_text())
    faces = {b: [(f["box"], f["track"], f["raw"], f["score"]) for fr in r["frames"] for f in fr["faces"]]
             for b, r in reports.items()}
    assert len(faces["host"]) >= 6 and faces["host"] == faces["simulate"]
    assert reports["simulate"]["engine"].startswith("QEMU")
    assert reports["host"]["overall"] == reports["simulate"]["overall"]
