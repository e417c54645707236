"""tinyfake.metrics on hand-computed examples (fake = positive class)."""
import math

import numpy as np
import pytest

from tinyfake.metrics import binary_metrics, equal_error_rate


def test_hand_computed_example():
    # fake scores 0.35 and 0.8 against real 0.1 and 0.4: 3 of 4 pairs ordered right
    m = binary_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert m["auc"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.75)  # predictions 0, 0, 0, 1
    assert m["f1"] == pytest.approx(2 / 3)  # TP 1, FP 0, FN 1
    # the ROC step passes through FPR = FNR = 0.5 (threshold 0.4)
    assert m["eer"] == pytest.approx(0.5)
    assert m["n"] == 4


def test_perfect_inverted_and_tied_scores():
    assert binary_metrics([0, 1], [0.2, 0.7]) == pytest.approx(
        {"accuracy": 1.0, "auc": 1.0, "f1": 1.0, "eer": 0.0, "n": 2})
    inv = binary_metrics([0, 1], [0.7, 0.2])
    assert inv["auc"] == 0.0 and inv["eer"] == 1.0 and inv["accuracy"] == 0.0
    tied = binary_metrics([0, 1, 0, 1], [0.5] * 4)
    assert tied["auc"] == 0.5 and tied["eer"] == pytest.approx(0.5)


def test_eer_interpolates_between_roc_points():
    # scores: real 0.1 0.6, fake 0.4 0.9 -> ROC (0,0) (0,.5) (.5,.5) (.5,1) (1,1)
    assert equal_error_rate([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9]) == pytest.approx(0.5)
    # many samples: EER of well separated Gaussians is near the analytic value
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(20000), np.ones(20000)]
    s = np.r_[rng.normal(0, 1, 20000), rng.normal(2, 1, 20000)]
    assert equal_error_rate(y, s) == pytest.approx(0.1587, abs=0.01)  # Phi(-1)


def test_one_class_gives_nan_not_a_crash():
    m = binary_metrics([0, 0, 0], [0.1, 0.7, 0.2])
    assert math.isnan(m["auc"]) and math.isnan(m["eer"])
    assert m["accuracy"] == pytest.approx(2 / 3) and m["f1"] == 0.0


def test_threshold_and_bad_input():
    assert binary_metrics([0, 1], [0.3, 0.4], threshold=0.35)["accuracy"] == 1.0
    with pytest.raises(ValueError):
        binary_metrics([0, 1], [0.3])
    with pytest.raises(ValueError):
        binary_metrics([0, 1], [0.3, float("nan")])


def test_auc_interval_resamples_groups():
    from tinyfake.metrics import auc_interval
    rng = np.random.default_rng(0)
    n = 400
    y = np.tile([0, 1], n // 2)
    s = y * 0.6 + rng.random(n)
    groups = np.repeat(np.arange(n // 2), 2)  # a real and its fake per group
    lo, hi = auc_interval(y, s, groups)
    from sklearn.metrics import roc_auc_score
    auc = roc_auc_score(y, s)
    assert lo < auc < hi and 0.02 < hi - lo < 0.2
    # whole groups move together: four copies of every group are no evidence
    # of more groups, so the interval matches the one of the original set
    lo4, hi4 = auc_interval(np.tile(y, 4), np.tile(s, 4), np.tile(groups, 4))
    assert hi4 - lo4 == pytest.approx(hi - lo, rel=0.25)
    # ... whereas treating each copy as its own group shrinks it about twofold
    lo_i, hi_i = auc_interval(np.tile(y, 4), np.tile(s, 4), np.arange(4 * n))
    assert hi_i - lo_i < 0.7 * (hi - lo)
    assert all(np.isnan(auc_interval(np.zeros(4), np.arange(4.0), np.arange(4))))
