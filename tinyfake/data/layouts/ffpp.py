"""FaceForensics++ (Rössler et al. 2019), as its download script lays it out:

    original_sequences/youtube/<c23|c40|raw>/videos/000.mp4        real, category "original"
    original_sequences/actors/<comp>/videos/01__walking.mp4         real, category "actors"
    manipulated_sequences/<Method>/<comp>/videos/000_003.mp4        fake, category <Method>
    manipulated_sequences/DeepFakeDetection/<comp>/videos/01_02__walking__X.mp4

Methods: Deepfakes, Face2Face, FaceSwap, NeuralTextures, FaceShifter,
DeepFakeDetection. A manipulated `<target>_<source>` video shows both
identities, so its group joins the target's and the source's video ids
(union-find): 000_003 and 003_000 and originals 000 and 003 form one group,
never split. Only `videos/` folders are read (not masks/). One compression
level is used: `compression`, or the first of c23, c40, raw present.
"""
from __future__ import annotations

import re
from pathlib import Path

from tinyfake.data.layouts.common import Groups, Item
from tinyfake.data.layouts.video import VIDEO_EXTS
from tinyfake.errors import UserError

COMPRESSIONS = ("c23", "c40", "raw")
_DFD = re.compile(r"^(\d+)_(\d+)__")   # DeepFakeDetection fake: target_source__scene__id
_ACTOR = re.compile(r"^(\d+)__")       # DeepFakeDetection original: actor__scene


def detect(root: Path) -> bool:
    return (root / "original_sequences").is_dir() or (root / "manipulated_sequences").is_dir()


def _ids(top: str, stem: str) -> list[str]:
    """The identity ids a video shows."""
    if top == "actors" or top == "DeepFakeDetection":
        m = _DFD.match(stem) or _ACTOR.match(stem)
        return [f"actor{g}" for g in m.groups()] if m else [stem]
    return stem.split("_")[:2] if re.fullmatch(r"\d+_\d+", stem) else [stem]


def find(root: Path, compression: str | None = None) -> list[Item]:
    found = []  # (path, label, category, ids)
    for label, part in ((0, "original_sequences"), (1, "manipulated_sequences")):
        base = root / part
        for top in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
            comps = {c.name: c for c in top.iterdir() if (c / "videos").is_dir()}
            comp = compression or next((c for c in COMPRESSIONS if c in comps), None)
            if comp is None or comp not in comps:
                continue
            for v in sorted((comps[comp] / "videos").iterdir()):
                if v.suffix.lower() in VIDEO_EXTS:
                    cat = "original" if top.name == "youtube" else top.name
                    found.append((v, label, cat, _ids(top.name, v.stem)))
    if compression and not found:
        raise UserError(f"no FaceForensics++ videos at compression {compression!r} in {root}")
    groups = Groups()
    for _, _, _, ids in found:
        groups.union(*ids)
    return [Item(p, label, "ffpp:" + groups.find(ids[0]), cat, video=True) for p, label, cat, ids in found]
