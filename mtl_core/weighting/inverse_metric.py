"""``inverse_metric``: after each epoch ``w_t`` proportional to ``1 / m_t``, the task's primary
validation metric (weights average 1; epoch 1 trains with equal weights). For a score
(accuracy, F1, AUC, R²) the weaker task weighs more; for an error (MSE, MAE) each loss is
divided by its own scale, which puts tasks of different units on one footing."""

from __future__ import annotations

import math

from mtl_core.weighting.loss_weighting import LossWeighting


class InverseMetric(LossWeighting):
    EPS = 1e-8

    def __init__(self, tasks, sizes, weights) -> None:
        super().__init__(tasks, sizes, {t: 1.0 for t in tasks})

    def end_epoch(self, epoch, train_loss, valid) -> None:
        inverse = {
            t: 1.0 / max(self.EPS, abs(valid[t]))
            for t in self.tasks
            if t in valid and math.isfinite(valid[t])
        }
        if len(inverse) == len(self.tasks):
            mean = sum(inverse.values()) / len(inverse)
            self._weights = {t: v / mean for t, v in inverse.items()}
