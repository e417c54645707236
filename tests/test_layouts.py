"""The research datasets' trees (tinyfake.data.layouts): tiny synthetic
trees in each layout, with short generated videos or images holding a
pasted face, are recognized, labelled, grouped and categorized, and load as
face crops; splits keep groups whole; per-category metrics."""
import json
import math
import os

import cv2
import numpy as np
import pytest

from tinyfake.data import load_dataset, split_dataset
from tinyfake.data.layouts import common, detect_layout, find_items, load_layout
from tinyfake.errors import UserError
from tinyfake.metrics import per_category_metrics


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(common, "IMAGE_CACHE", tmp_path / "image-cache")


@pytest.fixture(scope="module")
def face():
    from skimage import data

    from tinyfake.data import faces
    img = data.astronaut()
    left, top, s = faces.square_crop_box(faces.detect_face(img), img.shape, 0.6)
    return cv2.resize(img[top:top + s, left:left + s], (90, 90), interpolation=cv2.INTER_AREA)


def frame(face, shift: int = 0, tint: int = 0) -> np.ndarray:
    f = np.full((120, 160, 3), 80 + tint, np.uint8)
    f[15 + shift:105 + shift, 30 + 2 * shift:120 + 2 * shift] = face
    return f


def video(path, face, n: int = 4, tint: int = 0):
    path.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for i in range(n):
        out.write(cv2.cvtColor(frame(face, i, tint), cv2.COLOR_RGB2BGR))
    out.release()


def image(path, face, tint: int = 0):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(frame(face, 0, tint), cv2.COLOR_RGB2BGR))


def by_name(items, root):
    return {it.path.relative_to(root).as_posix(): it for it in items}


def groups_kept_whole(ds, seed=0):
    s = split_dataset(ds, seed=seed)
    sides = [set(p.group.tolist()) for p in (s.train, s.val, s.test)]
    return not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])


def test_faceforensics(tmp_path, face):
    root = tmp_path / "ffpp"
    for vid in ("000", "003", "010"):
        video(root / f"original_sequences/youtube/c23/videos/{vid}.mp4", face)
    video(root / "original_sequences/youtube/c40/videos/000.mp4", face)  # another compression: not read
    for m, vid in (("Deepfakes", "000_003"), ("Deepfakes", "003_000"), ("FaceSwap", "010_020"),
                   ("NeuralTextures", "003_000")):
        video(root / f"manipulated_sequences/{m}/c23/videos/{vid}.mp4", face, tint=20)
    video(root / "manipulated_sequences/Deepfakes/c23/masks/videos/000_003.mp4", face)  # masks: not read
    video(root / "original_sequences/actors/c23/videos/01__walking.mp4", face)
    video(root / "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__walking__ABC.mp4", face)
    assert detect_layout(root) == "ffpp"
    name, items = find_items(root)
    it = by_name(items, root)
    assert len(items) == 9 and "original_sequences/youtube/c40/videos/000.mp4" not in it
    assert it["original_sequences/youtube/c23/videos/000.mp4"].label == 0
    assert it["original_sequences/youtube/c23/videos/000.mp4"].category == "original"
    df = it["manipulated_sequences/Deepfakes/c23/videos/000_003.mp4"]
    assert df.label == 1 and df.category == "Deepfakes"
    # target and source identities share one group with their originals and the reverse swap
    g = df.group
    assert {it[k].group for k in ("original_sequences/youtube/c23/videos/000.mp4",
                                  "original_sequences/youtube/c23/videos/003.mp4",
                                  "manipulated_sequences/Deepfakes/c23/videos/003_000.mp4",
                                  "manipulated_sequences/NeuralTextures/c23/videos/003_000.mp4")} == {g}
    assert it["manipulated_sequences/FaceSwap/c23/videos/010_020.mp4"].group == \
        it["original_sequences/youtube/c23/videos/010.mp4"].group != g
    assert it["manipulated_sequences/DeepFakeDetection/c23/videos/01_02__walking__ABC.mp4"].group == \
        it["original_sequences/actors/c23/videos/01__walking.mp4"].group
    assert len(find_items(root, compression="c40")[1]) == 1
    with pytest.raises(UserError, match="compression 'raw'"):
        find_items(root, compression="raw")

    ds = load_layout(root, 32, frames_per_video=2)
    assert len(ds) == 18 and ds.x.shape[1:] == (32, 32, 3)  # 2 sampled frames with a face per video
    assert sorted(set(ds.category)) == ["DeepFakeDetection", "Deepfakes", "FaceSwap", "NeuralTextures",
                                        "actors", "original"]
    assert ds.name[0].endswith("#0") and ds.name[1].endswith("#3")  # frames 0 and 3 of a 4-frame video
    assert ds.counts() == {"real": 8, "fake": 10}
    assert groups_kept_whole(ds)
    # through load_dataset (what train/eval use): recognized automatically, crops cached
    again = load_dataset(str(root), 32)
    assert len(again) == 9 * 4 and (again.category != "").all()


def test_celeb_df(tmp_path, face):
    root = tmp_path / "Celeb-DF-v2"
    for rel in ("Celeb-real/id0_0000.mp4", "Celeb-real/id1_0000.mp4", "Celeb-real/id2_0001.mp4",
                "Celeb-real/id3_0002.mp4", "YouTube-real/00000.mp4",
                "Celeb-synthesis/id0_id1_0000.mp4", "Celeb-synthesis/id2_id3_0001.mp4"):
        video(root / rel, face, n=2)
    # the official list: 1 = REAL, 0 = fake (the opposite of tinyfake's labels)
    (root / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00000.mp4\n0 Celeb-synthesis/id2_id3_0001.mp4\n1 Celeb-real/id2_0001.mp4\n")
    assert detect_layout(root) == "celebdf"
    _, items = find_items(root)
    it = by_name(items, root)
    assert it["Celeb-synthesis/id0_id1_0000.mp4"].label == 1 and it["Celeb-real/id0_0000.mp4"].label == 0
    assert it["YouTube-real/00000.mp4"].category == "YouTube-real"
    assert it["Celeb-synthesis/id0_id1_0000.mp4"].group == it["Celeb-real/id1_0000.mp4"].group == \
        it["Celeb-real/id0_0000.mp4"].group != it["Celeb-real/id3_0002.mp4"].group
    _, test = find_items(root, part="test")
    assert {k: v.label for k, v in by_name(test, root).items()} == {
        "YouTube-real/00000.mp4": 0, "Celeb-synthesis/id2_id3_0001.mp4": 1, "Celeb-real/id2_0001.mp4": 0}
    assert len(find_items(root, part="train")[1]) == 4
    ds = load_layout(root, 24, frames_per_video=1)
    assert len(ds) == 7 and ds.counts() == {"real": 5, "fake": 2} and groups_kept_whole(ds)
    (root / "List_of_testing_videos.txt").write_text("0 Celeb-real/id0_0000.mp4\n")
    with pytest.raises(UserError, match="labels Celeb-real/id0_0000.mp4 fake"):
        find_items(root)


def test_dfdc(tmp_path, face):
    root = tmp_path / "dfdc"
    meta = {"dfdc_train_part_0": {"aaa.mp4": {"label": "REAL", "split": "train", "original": None},
                                  "bbb.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"},
                                  "ccc.mp4": {"label": "REAL", "split": "train", "original": None},
                                  "gone.mp4": {"label": "FAKE", "split": "train", "original": "ccc.mp4"}},
            "dfdc_train_part_1": {"ddd.mp4": {"label": "FAKE", "split": "train", "original": "ccc.mp4"}}}
    for part, entries in meta.items():
        for name in entries:
            if name != "gone.mp4":  # listed but not downloaded: skipped
                video(root / part / name, face, n=2)
        (root / part / "metadata.json").write_text(json.dumps(entries))
    assert detect_layout(root) == "dfdc"
    _, items = find_items(root)
    it = by_name(items, root)
    assert len(items) == 4
    assert [it[f"dfdc_train_part_0/{n}"].label for n in ("aaa.mp4", "bbb.mp4", "ccc.mp4")] == [0, 1, 0]
    assert it["dfdc_train_part_0/aaa.mp4"].group == it["dfdc_train_part_0/bbb.mp4"].group == "dfdc:aaa"
    assert it["dfdc_train_part_1/ddd.mp4"].group == "dfdc:ccc"
    assert it["dfdc_train_part_1/ddd.mp4"].category == "dfdc_train_part_1"
    ds = load_dataset(str(root), 32)
    assert len(ds) == 8 and groups_kept_whole(ds)
    (root / "dfdc_train_part_1" / "metadata.json").write_text('{"ddd.mp4": {"label": "MAYBE"}}')
    with pytest.raises(UserError, match="expected FAKE or REAL"):
        find_items(root)


def dfdc_faces_tree(root, face, rows):
    """The DFDC face-crop layout: faces_224/<video>.jpg + metadata.csv (rows:
    videoname, label, original, category)."""
    (root / "faces_224").mkdir(parents=True)
    lines = ["videoname,original_width,original_height,label,original,category"]
    for i, (name, label, original, cat) in enumerate(rows):
        crop = cv2.resize(face, (224, 224), interpolation=cv2.INTER_CUBIC)
        crop = np.clip(crop.astype(int) + 6 * i, 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "faces_224" / (name.rsplit(".", 1)[0] + ".jpg")), crop[..., ::-1])
        lines.append(f"{name},150,150,{label},{original},{cat}")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")


DFDC_ROWS = [(f"r{i}.mp4", "REAL", "", "") for i in range(6)] + \
            [(f"f{i}.mp4", "FAKE", f"r{i}.mp4", "swap" if i % 2 else "reenact") for i in range(6)]


def test_dfdc_face_crops(tmp_path, face):
    root = tmp_path / "dfdc_faces"
    dfdc_faces_tree(root, face, DFDC_ROWS)
    assert detect_layout(root) == "dfdc-faces"
    _, items = find_items(root)
    it = by_name(items, root)
    assert len(items) == 12
    assert it["faces_224/r3.jpg"].label == 0 and it["faces_224/f3.jpg"].label == 1
    # a fake's group is the real video it was made from
    assert it["faces_224/f3.jpg"].group == it["faces_224/r3.jpg"].group == "dfdc:r3"
    assert it["faces_224/f3.jpg"].category == "swap"
    ds = load_dataset(str(root), 32)
    assert len(ds) == 12 and ds.x.shape == (12, 32, 32, 3) and ds.counts() == {"real": 6, "fake": 6}
    for seed in range(5):
        assert groups_kept_whole(ds, seed)
    assert np.array_equal(load_dataset(str(root), 32).x, ds.x)  # from the cache


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("f2.mp4,150,150,FAKE", "f2.mp4,150,150,MAYBE"), r"metadata.csv:10: f2.mp4 has label 'MAYBE'"),
    (lambda t: t.replace("videoname,original_width", "video,original_width"), r"metadata.csv:1: the header lacks column\(s\) videoname"),
    (lambda t: t + "ghost.mp4,150,150,REAL,,\n", r"metadata.csv:14: the image of ghost.mp4 is missing"),
    (lambda t: t + "r1.mp4,150,150,REAL,,\n", r"metadata.csv:14: r1.mp4 is listed twice"),
])
def test_dfdc_face_crops_bad_rows_name_file_and_line(tmp_path, face, capsys, edit, message):
    from tinyfake.cli import main
    root = tmp_path / "dfdc_faces"
    dfdc_faces_tree(root, face, DFDC_ROWS)
    meta = root / "metadata.csv"
    meta.write_text(edit(meta.read_text()))
    with pytest.raises(UserError, match=message):
        load_dataset(str(root), 32)
    assert main(["train", "--data", str(root), "--size", "32", "--epochs", "1",
                 "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(meta) in err[0]


def test_decoded_face_cache_follows_files_size_and_crop(tmp_path, face, monkeypatch):
    root = tmp_path / "dfdc_faces"
    dfdc_faces_tree(root, face, DFDC_ROWS)
    decoded = []
    real_decode = common._decode_image
    monkeypatch.setattr(common, "_decode_image", lambda *a: decoded.append(a[0].name) or real_decode(*a))

    def load(size=32, **kw):
        decoded.clear()
        return load_dataset(str(root), size, **kw)

    first = load()
    assert len(decoded) == 12
    again = load()
    assert decoded == [] and np.array_equal(again.x, first.x)   # warm: nothing decoded
    load(40)
    assert len(decoded) == 12                                    # another size
    load(detect_faces=True)
    assert len(decoded) == 12                                    # another crop
    # a changed image: decoded afresh, and the new pixels are what comes back
    img = root / "faces_224" / "f4.jpg"
    cv2.imwrite(str(img), np.zeros((224, 224, 3), np.uint8))
    os.utime(img, ns=(img.stat().st_atime_ns, img.stat().st_mtime_ns + 10**9))
    changed = load()
    assert len(decoded) == 12
    k = list(changed.name).index("faces_224/f4.jpg")
    assert changed.x[k].max() == 0 and first.x[k].max() > 0
    # a removed row (and image): the cache of the old list is not used
    meta = root / "metadata.csv"
    meta.write_text("".join(l for l in meta.read_text().splitlines(keepends=True) if not l.startswith("r5.mp4")))
    assert len(load()) == 11 and len(decoded) == 11
    # an unreadable image is reported from a warm cache too
    img.write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match="unreadable"):
        load()
    with pytest.raises(UserError, match="unreadable"):
        load()
    assert len(load(skip_corrupt=True)) == 10


def test_cifake_keeps_its_own_split(tmp_path):
    root = tmp_path / "cifake"
    rng = np.random.default_rng(0)
    for part in ("train", "test"):
        for cls in ("REAL", "FAKE"):
            for i in range(3):
                (root / part / cls).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / part / cls / f"{i} (2).jpg"), rng.integers(0, 256, (32, 32, 3), np.uint8))
    assert detect_layout(root) == "cifake" and detect_layout(root / "train") == "cifake"
    ds = load_dataset(str(root), 32)
    assert len(ds) == 12 and sorted(set(ds.category)) == ["test", "train"]
    train = load_dataset(str(root / "train"), 16)
    assert len(train) == 6 and train.counts() == {"real": 3, "fake": 3} and set(train.category) == {"train"}
    assert len(set(train.group)) == 6


def test_trueface(tmp_path, face):
    root = tmp_path / "TrueFace" / "Train"
    image(root / "TrueFace_PreSocial/Real/FFHQ/00001.png", face)
    image(root / "TrueFace_PreSocial/Fake/StyleGAN2/conf-f/seed0001.png", face, 30)
    image(root / "TrueFace_PostSocial/Facebook/Real/FFHQ/00001.jpg", face)
    image(root / "TrueFace_PostSocial/Telegram/Fake/StyleGAN2/conf-f/seed0001.jpg", face, 30)
    image(root / "TrueFace_PostSocial/Twitter/Real/FFHQ/00002.jpg", face)
    assert detect_layout(root) == "trueface"
    _, items = find_items(root)
    it = by_name(items, root)
    assert {k: (v.label, v.category) for k, v in it.items()} == {
        "TrueFace_PreSocial/Real/FFHQ/00001.png": (0, "presocial"),
        "TrueFace_PreSocial/Fake/StyleGAN2/conf-f/seed0001.png": (1, "presocial"),
        "TrueFace_PostSocial/Facebook/Real/FFHQ/00001.jpg": (0, "facebook"),
        "TrueFace_PostSocial/Telegram/Fake/StyleGAN2/conf-f/seed0001.jpg": (1, "telegram"),
        "TrueFace_PostSocial/Twitter/Real/FFHQ/00002.jpg": (0, "twitter")}
    # an image and its shared copies stay together
    assert it["TrueFace_PreSocial/Real/FFHQ/00001.png"].group == \
        it["TrueFace_PostSocial/Facebook/Real/FFHQ/00001.jpg"].group
    ds = load_dataset(str(root), 32, detect_faces=True)
    assert len(ds) == 5 and groups_kept_whole(ds)


def test_dffd(tmp_path, face):
    root = tmp_path / "DFFD"
    image(root / "ffhq/train/00001.png", face)
    image(root / "stylegan_ffhq/train/00001.png", face, 10)
    image(root / "celeba/test/000123.jpg", face)
    image(root / "stargan/test/000123.jpg", face, 20)
    image(root / "youtube/train/000/0001.png", face)
    image(root / "deepfakes/train/000_003/0001.png", face, 30)
    image(root / "faceswap/validation/003_000/0001.png", face, 40)
    assert detect_layout(root) == "dffd"
    _, items = find_items(root)
    it = by_name(items, root)
    assert it["stargan/test/000123.jpg"].label == 1 and it["stargan/test/000123.jpg"].category == "stargan"
    assert it["celeba/test/000123.jpg"].label == 0
    assert it["stargan/test/000123.jpg"].group == it["celeba/test/000123.jpg"].group
    assert it["youtube/train/000/0001.png"].group == it["deepfakes/train/000_003/0001.png"].group == \
        it["faceswap/validation/003_000/0001.png"].group
    ds = load_dataset(str(root), 32)
    assert len(ds) == 7 and ds.counts() == {"real": 3, "fake": 4} and groups_kept_whole(ds)


def test_unknown_and_plain_folders(tmp_path):
    (tmp_path / "real").mkdir()
    assert detect_layout(tmp_path) is None
    (tmp_path / "other").mkdir()
    with pytest.raises(UserError, match="not a known dataset layout"):
        find_items(tmp_path / "other")
    with pytest.raises(UserError, match="unknown dataset layout 'nope'"):
        find_items(tmp_path, "nope")


def test_per_category_metrics_pool_the_reals():
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.6, 0.9, 0.8, 0.3, 0.7])
    cat = np.array(["original"] * 3 + ["Deepfakes", "Deepfakes", "FaceSwap", "FaceSwap"])
    m = per_category_metrics(y, s, cat)
    assert set(m) == {"Deepfakes", "FaceSwap", "original"}
    assert m["Deepfakes"]["n"] == 5 and m["Deepfakes"]["pooled_reals"] and m["Deepfakes"]["auc"] == 1.0
    # FaceSwap's fakes 0.3, 0.7 against the pooled reals 0.1, 0.2, 0.6: 5 of 6 pairs ordered
    assert m["FaceSwap"]["n"] == 5 and m["FaceSwap"]["auc"] == pytest.approx(5 / 6)
    assert m["original"]["n"] == 3 and m["original"]["accuracy"] == pytest.approx(2 / 3)
    assert math.isnan(m["original"]["auc"]) and not m["original"]["pooled_reals"]
    assert per_category_metrics(y, s, [""] * 7) == {}


@pytest.mark.slow
def test_eval_reports_per_category_metrics(tmp_path, face, capsys):
    from tinyfake.cli import main
    from tinyfake.export.pipeline import export_run
    from tinyfake.runs import RunDir
    from tinyfake.train import make_config, train

    run = RunDir(tmp_path / "run")
    train(make_config(None, 32, epochs=1), run, threads=2, progress=False)
    export_run(run, calib_images=16)
    root = tmp_path / "DFFD"
    for i in range(3):
        image(root / f"ffhq/test/{i:05d}.png", face, 5 * i)
        image(root / f"stylegan_ffhq/test/{i:05d}.png", face, 40 + 5 * i)
        image(root / f"faceapp/test/{i:05d}.png", face, 80 + 5 * i)
    assert main(["eval", str(run.root), "--data", str(root)]) == 0
    out = capsys.readouterr().out
    assert "faceapp" in out and "stylegan_ffhq" in out
    result = json.loads((run.root / "eval_DFFD.json").read_text())
    pc = result["per_category"]["int8_tflm"]
    assert set(pc) == {"ffhq", "stylegan_ffhq", "faceapp"} and pc["faceapp"]["n"] == 6
    # a DFDC face-crop tree held out from training: every image scored, per category
    dfdc = tmp_path / "held_out_dfdc"
    dfdc_faces_tree(dfdc, face, DFDC_ROWS)
    assert main(["eval", str(run.root), "--data", str(dfdc)]) == 0
    result = json.loads((run.root / "eval_held_out_dfdc.json").read_text())
    assert result["n"] == 12 and result["counts"] == {"real": 6, "fake": 6}
    assert set(result["per_category"]["int8_tflm"]) == {"swap", "reenact"}
    lo, hi = result["metrics"]["int8_tflm"]["auc_ci95"]
    assert lo <= result["metrics"]["int8_tflm"]["auc"] <= hi
