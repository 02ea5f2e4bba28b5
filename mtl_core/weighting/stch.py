"""``stch``: smooth Tchebycheff scalarisation (Lin et al. 2024, "Smooth Tchebycheff
scalarization for multi-objective optimization", ICML), as its authors apply it to
multi-task learning (their STCH_MTL code, and LibMTL's ``STCH``).

Warm-up (the first ``training.stch_warmup`` epochs): the loss is ``sum_t log L_t``; each
task's mean training loss in the last warm-up epoch becomes its nadir value ``z_t``. Then
each step minimises

    mu * T * log sum_t exp(log(L_t / z_t) / mu)

a smooth maximum over the tasks' log loss ratios: as ``mu`` (``training.stch_mu``) shrinks
it approaches the Tchebycheff scalarisation (only the worst task, relative to its nadir,
gets a gradient); as it grows, every task's log loss weighs the same. The logged weight of
task ``t`` is the weight on its log loss, ``T softmax_t(log(L_t / z_t) / mu)`` (1 during
warm-up); they sum to T. It combines every task's loss in each step, so it needs ``joint``.
"""

from __future__ import annotations

import torch

from mtl_core.weighting.loss_weighting import LossWeighting

EPS = 1e-20  # keeps the log of a loss of exactly 0 (a batch without labels) finite


class STCH(LossWeighting):
    per_step = True

    def __init__(self, tasks, sizes, weights, *, mu: float = 1.0, warmup: int = 1) -> None:
        super().__init__(tasks, sizes, {t: 1.0 for t in tasks})
        if not mu > 0 or warmup < 1:
            raise ValueError(f"stch needs stch_mu > 0 and stch_warmup >= 1, got {mu}, {warmup}")
        self.mu, self.warmup = float(mu), int(warmup)
        self.nadir: dict[str, float] | None = None
        self._epochs = 0

    def combine(self, losses):
        logs = torch.log(torch.stack([losses[t] for t in self.tasks]) + EPS)
        if self.nadir is None:
            return logs.sum()
        nadir = logs.new_tensor([self.nadir[t] for t in self.tasks])
        ratios = (logs - torch.log(nadir + EPS)) / self.mu
        n = len(self.tasks)
        with torch.no_grad():
            shares = n * torch.softmax(ratios, dim=0)
        self._weights = {t: float(w) for t, w in zip(self.tasks, shares, strict=True)}
        return self.mu * n * torch.logsumexp(ratios, dim=0)

    def end_epoch(self, epoch, train_loss, valid) -> None:
        self._epochs += 1
        warmed = self._epochs >= self.warmup and all(t in train_loss for t in self.tasks)
        if self.nadir is None and warmed:
            self.nadir = {t: max(float(train_loss[t]), EPS) for t in self.tasks}
