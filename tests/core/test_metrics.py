from __future__ import annotations

import numpy as np
import pytest

from hemiface.core import metrics


def test_rank_averages_ties() -> None:
    assert metrics.rank(np.array([3.0, 1.0, 2.0, 1.0])).tolist() == [4.0, 1.5, 3.0, 1.5]


def test_roc_auc_of_perfectly_separated_scores_is_one() -> None:
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert metrics.roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0


def test_roc_auc_takes_labels_first() -> None:
    # Swapping the arguments would rank the labels by the scores and give another figure.
    labels, scores = [0, 1, 0, 1], [0.3, 0.4, 0.5, 0.9]
    assert metrics.roc_auc(labels, scores) == pytest.approx(0.75)


def test_roc_auc_of_ties_is_one_half() -> None:
    assert metrics.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_roc_auc_counts_a_tie_across_classes_as_one_half() -> None:
    # Pairs (pos, neg): (0.6, 0.2) wins, (0.6, 0.6) ties -> (1 + 0.5) / 2.
    assert metrics.roc_auc([0, 0, 1], [0.2, 0.6, 0.6]) == pytest.approx(0.75)


def test_roc_auc_of_one_class_is_none() -> None:
    assert metrics.roc_auc([1, 1, 1], [0.1, 0.5, 0.9]) is None
    assert metrics.roc_auc([0, 0], [0.1, 0.5]) is None


def test_flip_consistency_is_zero_for_a_mirroring_model() -> None:
    p = np.array([0.1, 0.7, 0.5])
    assert metrics.flip_consistency(p, 1.0 - p) == pytest.approx(0.0)
    assert metrics.flip_consistency(p, p) == pytest.approx((0.8 + 0.4 + 0.0) / 3)
    assert metrics.flip_label_agreement(p, 1.0 - p) == pytest.approx(2 / 3)  # 0.5 stays Right


def test_agreement_and_dp_of_a_vector_with_itself() -> None:
    p = np.array([0.1, 0.6, 0.9])
    assert metrics.agreement(p, p) == 1.0
    assert metrics.max_abs_dp(p, p) == 0.0
    assert metrics.label_flips(p, p) == 0


def test_agreement_and_dp_by_hand() -> None:
    a = np.array([0.1, 0.6, 0.9, 0.4])
    b = np.array([0.2, 0.4, 0.9, 0.45])
    assert metrics.label_flips(a, b) == 1
    assert metrics.agreement(a, b) == pytest.approx(0.75)
    assert metrics.max_abs_dp(a, b) == pytest.approx(0.2)
    assert metrics.mean_abs_dp(a, b) == pytest.approx((0.1 + 0.2 + 0.0 + 0.05) / 4)
    with pytest.raises(ValueError, match="equal length"):
        metrics.agreement(a, b[:2])


def test_empty_pair_agrees_zero() -> None:
    assert metrics.agreement(np.array([]), np.array([])) == 0.0
    assert metrics.max_abs_dp(np.array([]), np.array([])) == 0.0


def test_cohen_kappa_by_hand() -> None:
    assert metrics.cohen_kappa([0, 1, 0, 1], [0, 1, 0, 1]) == 1.0
    # observed 0.5, chance 0.5 * 0.5 + 0.5 * 0.5 = 0.5 -> kappa 0
    assert metrics.cohen_kappa([0, 1, 0, 1], [0, 0, 1, 1]) == pytest.approx(0.0)
    # observed 3/4; shares 1/2 and 1/4: chance 1/8 + 3/8 = 1/2 -> (3/4 - 1/2) / (1/2)
    assert metrics.cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert metrics.cohen_kappa([1, 1], [1, 1]) == 1.0  # chance agrees fully too
    assert metrics.cohen_kappa([1, 1], [0, 0]) == 0.0


def test_ece_by_hand() -> None:
    # Confidences 0.9, 0.9 (bin 0.8-0.9) and 0.6, 0.6 (bin 0.5-0.6); correct 1, 0, 1, 1.
    labels = np.array([1, 0, 0, 1])
    p = np.array([0.9, 0.9, 0.4, 0.6])
    expected = 0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6)
    assert metrics.ece(labels, p) == pytest.approx(expected)
    assert metrics.ece([1, 0], [1.0, 0.0]) == pytest.approx(0.0)


def test_accuracy_by_hand() -> None:
    assert metrics.accuracy([1, 0, 1], [0.7, 0.2, 0.4]) == pytest.approx(2 / 3)


def test_roc_auc_extremes_and_ties() -> None:
    y = np.array([0, 0, 1, 1])
    assert metrics.roc_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert metrics.roc_auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    # one positive outranks one of two negatives: 1/2
    assert metrics.roc_auc(np.array([0, 1, 0]), np.array([0.2, 0.5, 0.7])) == pytest.approx(0.5)


def test_ece_of_calibrated_and_overconfident() -> None:
    y = np.array([1, 1, 1, 0])
    # Confidence 0.75 everywhere and 75% correct: perfectly calibrated.
    assert metrics.ece(y, np.full(4, 0.75)) == pytest.approx(0.0)
    # Fully confident and half wrong: ECE 0.5.
    assert metrics.ece(np.array([1, 1]), np.array([1.0, 0.0])) == 0.5


def test_cohen_kappa_of_opposite_labels() -> None:
    a = np.array([0, 1, 0, 1, 1, 0])
    assert metrics.cohen_kappa(a, 1 - a) == pytest.approx(-1.0)
    assert -1.0 <= metrics.cohen_kappa(a, np.array([0, 1, 1, 1, 0, 0])) <= 1.0
