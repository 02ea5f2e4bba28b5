"""``dwa`` (Liu et al. 2019, "End-to-end multi-task learning with attention"): dynamic weight
average, ``w_t = T softmax_t(r_t / tau)`` with ``r_t`` the ratio of the task's mean training
loss over the last two epochs (equal weights for the first two epochs). ``tau`` is
``training.dwa_temperature`` (2, the paper's): a larger one is closer to equal weights."""

from __future__ import annotations

import math
from collections.abc import Mapping

from mtl_core.weighting.loss_weighting import LossWeighting


class DWA(LossWeighting):
    def __init__(self, tasks, sizes, weights, *, temperature: float = 2.0) -> None:
        super().__init__(tasks, sizes, {t: 1.0 for t in tasks})
        if not temperature > 0:
            raise ValueError(f"dwa_temperature must be above 0, got {temperature}")
        self.tau = float(temperature)
        self._history: list[Mapping[str, float]] = []

    def end_epoch(self, epoch, train_loss, valid) -> None:
        if not all(t in train_loss for t in self.tasks):
            return  # a task not trained this epoch (sequential): keep the weights
        self._history.append(dict(train_loss))
        if len(self._history) < 2:
            return
        last, before = self._history[-1], self._history[-2]
        rates = {t: last[t] / before[t] if before[t] > 0 else 1.0 for t in self.tasks}
        top = max(rates.values())
        exp = {t: math.exp((r - top) / self.tau) for t, r in rates.items()}
        total = sum(exp.values())
        self._weights = {t: len(self.tasks) * v / total for t, v in exp.items()}
