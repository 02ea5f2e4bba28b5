"""Task types: head size, loss and metrics per type, against torch and scikit-learn directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as M

from mtl_core.tasks import (
    TaskSpec,
    TaskType,
    allowed_metrics,
    higher_is_better,
    loss,
    predict,
    score,
)


def test_head_sizes():
    assert TaskSpec("a", TaskType.binary, "f1", ("0", "1")).head_size == 1
    assert TaskSpec("a", TaskType.multiclass, "accuracy", ("x", "y", "z")).head_size == 3
    assert TaskSpec("a", TaskType.multilabel, "f1", ("p", "q")).head_size == 2
    assert TaskSpec("a", TaskType.regression, "mse").head_size == 1


def test_binary_loss_is_bce_with_logits():
    spec = TaskSpec("a", TaskType.binary, "f1", ("0", "1"))
    logits, y = torch.tensor([[2.0], [-1.0]]), torch.tensor([1.0, 0.0])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits.squeeze(-1), y)
    assert loss(spec, logits, y).item() == pytest.approx(expected.item())


def test_regression_loss_uses_standardised_targets_and_predictions_are_in_original_units():
    spec = TaskSpec("r", TaskType.regression, "mse", target_mean=10.0, target_std=2.0)
    logits = torch.tensor([[0.5], [-1.0]])
    y = torch.tensor([11.0, 8.0])  # standardised: 0.5, -1.0
    assert loss(spec, logits, y).item() == pytest.approx(0.0)
    assert predict(spec, logits).tolist() == pytest.approx([11.0, 8.0])


def test_binary_scores_match_sklearn():
    spec = TaskSpec("a", TaskType.binary, "f1", ("0", "1"))
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.2, 0.7, 0.4, 0.6, 0.9])
    out = score(spec, y, p)
    pred = (p >= 0.5).astype(int)
    assert out["f1"] == pytest.approx(M.f1_score(y, pred))
    assert out["accuracy"] == pytest.approx(0.6)
    assert out["auc"] == pytest.approx(M.roc_auc_score(y, p))


def test_multiclass_and_multilabel_scores():
    spec = TaskSpec("m", TaskType.multiclass, "f1_macro", ("a", "b", "c"))
    y = np.array([0, 1, 2, 2])
    p = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2]])
    out = score(spec, y, p)
    assert out["accuracy"] == pytest.approx(0.75)
    assert (
        out["f1"] == out["f1_macro"] == pytest.approx(M.f1_score(y, p.argmax(1), average="macro"))
    )
    ml = TaskSpec("l", TaskType.multilabel, "f1", ("p", "q"))
    y2 = np.array([[1, 0], [0, 1], [1, 1]])
    p2 = np.array([[0.9, 0.1], [0.2, 0.3], [0.7, 0.8]])
    out2 = score(ml, y2, p2)
    assert out2["accuracy"] == pytest.approx(2 / 3)  # exact-match accuracy
    assert out2["f1"] == pytest.approx(M.f1_score(y2, (p2 >= 0.5).astype(int), average="micro"))


def test_regression_scores_and_directions():
    spec = TaskSpec("r", TaskType.regression, "rmse")
    out = score(spec, np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert out["mse"] == pytest.approx(4 / 3) and out["rmse"] == pytest.approx((4 / 3) ** 0.5)
    assert out["mae"] == pytest.approx(2 / 3)
    assert out["r2"] == pytest.approx(M.r2_score([1, 2, 3], [1, 2, 5]))
    assert not higher_is_better("mse") and higher_is_better("r2") and higher_is_better("f1")
    assert allowed_metrics("regression") == ("mse", "rmse", "mae", "r2")


def test_auc_of_a_one_class_split_is_nan_not_an_error():
    spec = TaskSpec("a", TaskType.binary, "f1", ("0", "1"))
    assert np.isnan(score(spec, np.array([1, 1]), np.array([0.2, 0.9]))["auc"])
