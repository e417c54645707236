"""`FaceDataset` (uint8 NHWC faces + labels + groups) and group-aware splits."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from tinyfake.errors import UserError

CLASS_NAMES = ("real", "fake")  # label 0 = real, 1 = fake


@dataclass
class FaceDataset:
    """Faces at one size: `x` uint8 (N,H,W,3) NHWC, `y` uint8 (1 = fake),
    `group` (N,) str (source identity/photo: never split across train/test),
    `name` (N,) str (where each face came from, for messages),
    `category` (N,) str (source category, e.g. manipulation method or
    platform, for per-category metrics; "" everywhere when the data has none)."""

    x: np.ndarray
    y: np.ndarray
    group: np.ndarray
    name: np.ndarray
    source: str = ""
    category: np.ndarray | None = None

    def __post_init__(self):
        self.x = np.asarray(self.x, dtype=np.uint8)
        self.y = np.asarray(self.y, dtype=np.uint8)
        self.group = np.asarray(self.group).astype(str)
        self.name = np.asarray(self.name).astype(str)
        n = len(self.x)
        self.category = (np.full(n, "", dtype="<U1") if self.category is None
                         else np.asarray(self.category).astype(str))
        assert self.category.shape == (n,), self.category.shape
        assert self.x.ndim == 4 and self.x.shape[-1] == 3, self.x.shape
        assert self.y.shape == (n,) and self.group.shape == (n,) and self.name.shape == (n,)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def size(self) -> int:
        return int(self.x.shape[1])

    def subset(self, idx) -> "FaceDataset":
        idx = np.asarray(idx, dtype=np.int64)
        return FaceDataset(self.x[idx], self.y[idx], self.group[idx], self.name[idx], self.source,
                           self.category[idx])

    def counts(self) -> dict:
        c = Counter(int(v) for v in self.y)
        return {CLASS_NAMES[k]: c.get(k, 0) for k in (0, 1)}

    def check_usable(self) -> "FaceDataset":
        """Raise UserError unless the set has images of both classes."""
        where = self.source or "the dataset"
        if len(self) == 0:
            raise UserError(f"no images found in {where}; put faces under real/ and fake/")
        c = self.counts()
        present = [k for k, v in c.items() if v]
        if len(present) == 1:
            raise UserError(f"{where} has only {present[0]} images ({len(self)}); "
                            "a detector needs both real and fake faces")
        return self


@dataclass
class Splits:
    train: FaceDataset
    val: FaceDataset
    test: FaceDataset
    indices: tuple = field(default=(), repr=False)  # (train_idx, val_idx, test_idx) into the full set


def check_fractions(fractions) -> tuple[float, float, float]:
    f = tuple(float(v) for v in fractions)
    if len(f) != 3 or min(f) < 0 or f[0] <= 0 or abs(sum(f) - 1.0) > 1e-6:
        raise UserError(f"split fractions must be three numbers >= 0 (train > 0) summing to 1, got {fractions}")
    return f


def split_dataset(ds: FaceDataset, seed: int = 0, fractions=(0.7, 0.15, 0.15)) -> Splits:
    """Split by group (no group on two sides), deterministically by `seed`.

    Groups are stratified by their label mix (all real / all fake / mixed), and
    each stratum is dealt out so every split gets its share of images: the
    first groups of a stratum go to test and val (so both hold both classes
    when there are enough groups), the rest to the split furthest below its
    target.
    """
    fr = np.array(check_fractions(fractions))
    groups, inverse = np.unique(ds.group, return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(groups))
    fake = np.bincount(inverse, weights=ds.y, minlength=len(groups))
    kind = np.where(fake == 0, 0, np.where(fake == sizes, 1, 2))

    rng = np.random.default_rng(seed)
    assign = np.empty(len(groups), dtype=np.int64)
    order_first = [s for s in (2, 1) if fr[s] > 0]  # test, then val
    for k in (0, 1, 2):
        members = np.flatnonzero(kind == k)
        members = members[rng.permutation(len(members))]
        members = members[np.argsort(-sizes[members], kind="stable")]  # big groups first
        target = fr * sizes[members].sum()
        got = np.zeros(3)
        for i, g in enumerate(members):
            if i < len(order_first) and len(members) > len(order_first):
                s = order_first[i]
            else:
                s = int(np.argmax(np.where(fr > 0, target - got, -np.inf)))
            assign[g] = s
            got[s] += sizes[g]

    sample_split = assign[inverse]
    idx = tuple(np.flatnonzero(sample_split == s) for s in range(3))
    return Splits(*(ds.subset(i) for i in idx), indices=idx)
