"""``gls``: the geometric loss strategy (Chennupati et al. 2019, "MultiNet++: multi-stream
feature aggregation and geometric loss strategy for multi-task learning", CVPR workshops):
minimise the geometric mean of the task losses, ``(prod_t L_t)^(1/T)``.

Its gradient is ``sum_t G / (T L_t) grad L_t`` (``G`` the geometric mean): each task is
weighted by the inverse of its own loss, so the strategy does not change when one task's loss
is measured in other units (a factor ``c`` on ``L_t`` scales the whole gradient by
``c^(1/T)``, its direction stays). The logged weight of task ``t`` is that effective weight,
``G / (T L_t)``. It combines every task's loss in each step, so it needs ``joint``.
"""

from __future__ import annotations

import torch

from mtl_core.weighting.loss_weighting import LossWeighting

EPS = 1e-20  # keeps the log of a loss of exactly 0 (a batch without labels) finite


class GLS(LossWeighting):
    per_step = True

    def __init__(self, tasks, sizes, weights) -> None:
        super().__init__(tasks, sizes, {t: 1.0 for t in tasks})

    def combine(self, losses):
        stacked = torch.stack([losses[t] for t in self.tasks])
        geometric = torch.exp(torch.log(stacked + EPS).mean())
        with torch.no_grad():
            effective = geometric / (len(self.tasks) * (stacked + EPS))
        self._weights = {t: float(w) for t, w in zip(self.tasks, effective, strict=True)}
        return geometric
