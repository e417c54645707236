"""Detection metrics with fake (label 1) as the positive class.

Scores are P(fake). AUC and EER are NaN when y holds one class only (they are
undefined there), never a made-up number.
"""
from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score, roc_curve


def equal_error_rate(y_true, scores) -> float:
    """The rate where false accepts (real called fake) equal false rejects.

    Interpolated linearly between the two ROC points where FPR - FNR changes sign.
    """
    fpr, tpr, _ = roc_curve(y_true, scores)
    fnr = 1 - tpr
    diff = fpr - fnr  # goes from -1 (threshold above all scores) up to +1
    i = int(np.flatnonzero(diff >= 0)[0])
    if diff[i] == 0 or i == 0:
        return float(fpr[i])
    t = -diff[i - 1] / (diff[i] - diff[i - 1])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def binary_metrics(y_true, scores, threshold: float = 0.5) -> dict:
    """accuracy and F1 at `threshold`, ROC-AUC and EER over all thresholds."""
    y = np.asarray(y_true).astype(int).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape or y.size == 0:
        raise ValueError(f"need as many scores as labels (>0), got {s.shape} and {y.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinity")
    pred = (s >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "accuracy": float((pred == y).mean()),
        "auc": float(roc_auc_score(y, s)) if both else math.nan,
        "f1": float(f1_score(y, pred, pos_label=1, zero_division=0.0)),
        "eer": equal_error_rate(y, s) if both else math.nan,
        "n": int(y.size),
    }


def per_category_metrics(y_true, scores, category, threshold: float = 0.5) -> dict:
    """`binary_metrics` per source category (manipulation method, platform ...).

    A category holding only fakes (e.g. one FF++ method) is scored together
    with every real sample of the set (the pooled reals), as FF++'s
    per-method results are; a category holding only reals is scored alone
    (accuracy; AUC and EER are NaN). Samples with category "" are not a
    category of their own. Returns {} when no sample has a category.
    """
    y = np.asarray(y_true).astype(int).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    cat = np.asarray(category).astype(str).ravel()
    out = {}
    for c in sorted(set(cat.tolist()) - {""}):
        members = cat == c
        if (y[members] == 1).all():
            members = members | (y == 0)
        m = binary_metrics(y[members], s[members], threshold)
        m["pooled_reals"] = bool((cat[members] != c).any())
        out[c] = m
    return out


def auc_interval(y_true, scores, groups, *, level: float = 0.95, n_boot: int = 1000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the ROC-AUC, resampling whole groups
    (source videos / identities) with replacement, since faces of one group
    are not independent. A resample is the original weighted by how often
    each group was drawn. (nan, nan) when y holds one class only."""
    y = np.asarray(y_true).astype(int).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    _, inverse = np.unique(np.asarray(groups).astype(str).ravel(), return_inverse=True)
    if len(np.unique(y)) < 2:
        return math.nan, math.nan
    n_groups = int(inverse.max()) + 1
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(n_boot):
        w = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups))[inverse]
        if w[y == 1].sum() and w[y == 0].sum():
            aucs.append(roc_auc_score(y, s, sample_weight=w))
    lo, hi = np.quantile(aucs, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
