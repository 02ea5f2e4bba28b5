"""``rlw`` (Lin et al. 2021, "Reasonable effectiveness of random weighting"): weights
``T softmax(z)``, ``z ~ N(0, 1)``, drawn anew each step from a generator seeded by the run."""

from __future__ import annotations

import torch

from mtl_core.weighting.loss_weighting import LossWeighting


class RLW(LossWeighting):
    per_step = True

    def __init__(self, tasks, sizes, weights, *, seed: int = 0) -> None:
        super().__init__(tasks, sizes, {t: 1.0 for t in tasks})
        self._generator = torch.Generator().manual_seed(int(seed))

    def combine(self, losses):
        draws = torch.softmax(torch.randn(len(self.tasks), generator=self._generator), dim=0)
        self._weights = {
            t: float(len(self.tasks) * w) for t, w in zip(self.tasks, draws, strict=True)
        }
        return sum(self._weights[t] * loss for t, loss in losses.items())
