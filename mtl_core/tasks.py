"""Task types: what a task's type decides, in one place.

A task type fixes the size of the task's head, the loss that trains it, how raw labels become
training targets, and which metrics can score it. Metrics are scikit-learn's.

| type       | head size  | loss                        | targets              | metrics                   |
|------------|------------|-----------------------------|----------------------|---------------------------|
| binary     | 1          | BCE with logits             | 0/1 floats           | accuracy f1 f1_macro auc  |
| multiclass | n_classes  | cross-entropy               | class indices        | accuracy f1 f1_macro auc  |
| multilabel | n_labels   | BCE with logits (per label) | 0/1 float matrix     | accuracy f1 f1_macro auc  |
| regression | 1          | MSE on standardised targets | floats               | mse rmse mae r2           |

Metric definitions: ``f1`` is the positive-class F1 for binary tasks, macro-averaged F1 for
multiclass and micro-averaged F1 for multilabel tasks; ``f1_macro`` is always macro-averaged;
``auc`` is ROC AUC (one-vs-rest, macro for multiclass; macro over labels for multilabel);
``accuracy`` for multilabel is exact-match (subset) accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

TASK_TYPES = ("binary", "multiclass", "multilabel", "regression")
CLASSIFICATION_METRICS = ("accuracy", "f1", "f1_macro", "auc")
REGRESSION_METRICS = ("mse", "rmse", "mae", "r2")
LOWER_IS_BETTER = frozenset({"mse", "rmse", "mae"})


class TaskType(StrEnum):
    binary = "binary"
    multiclass = "multiclass"
    multilabel = "multilabel"
    regression = "regression"


def allowed_metrics(task_type: str) -> tuple[str, ...]:
    """The metrics a task of this type can be scored with."""
    return REGRESSION_METRICS if task_type == TaskType.regression else CLASSIFICATION_METRICS


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


@dataclass(frozen=True)
class TaskSpec:
    """What the model and the loop need to know about a task: its name, type and head size.

    ``classes`` holds the class labels in head order (binary: negative then positive;
    multiclass: one per output; multilabel: one name per label column; regression: empty).
    ``target_mean``/``target_std`` standardise regression targets for the loss; metrics are
    always computed in the original units.
    """

    name: str
    type: TaskType
    metric: str
    classes: tuple[str, ...] = ()
    target_mean: float = 0.0
    target_std: float = 1.0

    @property
    def head_size(self) -> int:
        if self.type in (TaskType.multiclass, TaskType.multilabel):
            return len(self.classes)
        return 1


def loss(spec: TaskSpec, logits, targets, class_weight=None):
    """The task's training loss (a scalar tensor) for a batch of logits and targets;
    ``class_weight``: each class's weight (binary, multiclass: a weighted mean over the batch's
    rows) or each label's positive weight (multilabel), from ``class_weights: balanced``."""
    # here, not at the top: torch loads only when this runs
    import torch.nn.functional as F

    if spec.type == TaskType.binary:
        if class_weight is None:
            return F.binary_cross_entropy_with_logits(logits.squeeze(-1), targets)
        rows = class_weight[targets.long()]
        each = F.binary_cross_entropy_with_logits(logits.squeeze(-1), targets, reduction="none")
        return (rows * each).sum() / rows.sum()
    if spec.type == TaskType.multilabel:
        return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=class_weight)
    if spec.type == TaskType.multiclass:
        return F.cross_entropy(logits, targets, weight=class_weight)
    standardised = (targets - spec.target_mean) / spec.target_std
    return F.mse_loss(logits.squeeze(-1), standardised)


def predict(spec: TaskSpec, logits) -> np.ndarray:
    """Scores in the space the metrics expect: probabilities, or values in original units."""
    # here, not at the top: torch loads only when this runs
    import torch

    with torch.no_grad():
        if spec.type == TaskType.binary:
            return torch.sigmoid(logits.squeeze(-1)).cpu().numpy()
        if spec.type == TaskType.multilabel:
            return torch.sigmoid(logits).cpu().numpy()
        if spec.type == TaskType.multiclass:
            return torch.softmax(logits, dim=-1).cpu().numpy()
        values = logits.squeeze(-1) * spec.target_std + spec.target_mean
        return values.cpu().numpy()


def score(spec: TaskSpec, y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float]:
    """Every metric of the task's type on one split, from ``predict``'s scores."""
    # here, not at the top: the schema reads this module's metric table, and `sweeps validate`
    # stays fast without scikit-learn
    from sklearn import metrics as M

    y_true = np.asarray(y_true)
    if spec.type == TaskType.regression:
        mse = float(M.mean_squared_error(y_true, y_score))
        return {
            "mse": mse,
            "rmse": float(np.sqrt(mse)),
            "mae": float(M.mean_absolute_error(y_true, y_score)),
            "r2": float(M.r2_score(y_true, y_score)) if len(y_true) > 1 else float("nan"),
        }
    if spec.type == TaskType.binary:
        y_pred = (y_score >= 0.5).astype(int)
        f1_avg, auc_kwargs = "binary", {}
    elif spec.type == TaskType.multiclass:
        y_pred = y_score.argmax(axis=1)
        f1_avg, auc_kwargs = (
            "macro",
            {"multi_class": "ovr", "labels": list(range(len(spec.classes)))},
        )
    else:
        y_pred = (y_score >= 0.5).astype(int)
        f1_avg, auc_kwargs = "micro", {"average": "macro"}
    out = {
        "accuracy": float(M.accuracy_score(y_true, y_pred)),
        "f1": float(M.f1_score(y_true, y_pred, average=f1_avg, zero_division=0)),
        "f1_macro": float(M.f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }
    try:
        out["auc"] = float(M.roc_auc_score(y_true, y_score, **auc_kwargs))
    except ValueError:  # a split with one class only has no AUC
        out["auc"] = float("nan")
    return out
