"""``uncertainty`` (Kendall et al. 2018, "Multi-task learning using uncertainty to weigh
losses"): ``sum_t exp(-s_t) L_t + s_t`` with a learned ``s_t = log sigma_t^2`` per task; a
noisier task learns a larger ``s_t``, so a smaller weight ``exp(-s_t)`` (the logged weight).

Two settings the paper leaves open, both in the study file:

- ``training.uncertainty_init`` (default 0): ``s_t`` at the start, so every weight starts at
  1, as equal weighting does (LibMTL starts at -0.5: weights of 1.65);
- ``training.uncertainty_lr`` (default 0, meaning ``max(training.lr, 0.01)``): the rate of the
  log-variances' own Adam. At a model rate of 1e-3 an Adam step moves each ``s_t`` by about
  1e-3, so over the few hundred steps of a short study the weights would stay within a few
  percent of 1 and the method would be equal weighting by another name; at 0.01 they can move
  by a factor of e in about 100 steps. LibMTL trains them at the model's rate: set
  ``uncertainty_lr`` to ``training.lr`` to match it.

The loss is ``exp(-s) L + s``, twice the paper's regression form ``L / (2 sigma^2) + log
sigma``: the same minimiser, twice the gradient (harmless under Adam, which divides a constant
scale out of each update; not under ``optimizer: sgd``)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from mtl_core.weighting.loss_weighting import LossWeighting


class Uncertainty(LossWeighting):
    per_step = True

    def __init__(self, tasks, sizes, weights, *, init: float = 0.0, lr: float = 0.0) -> None:
        super().__init__(tasks, sizes, {t: 1.0 for t in tasks})
        self.log_vars = torch.nn.ParameterDict(
            {t: torch.nn.Parameter(torch.full((), float(init))) for t in tasks}
        )
        self.own_lr = float(lr)  # 0: max(the model's rate, 0.01)
        self._optimizer: torch.optim.Optimizer | None = None

    def bind(self, model, lr) -> None:
        device = next(model.parameters()).device
        self.log_vars.to(device)
        rate = self.own_lr or max(lr, 0.01)
        self._optimizer = torch.optim.Adam(self.log_vars.parameters(), lr=rate)

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return self.log_vars.parameters()

    def combine(self, losses):
        return sum(
            torch.exp(-self.log_vars[t]) * loss + self.log_vars[t] for t, loss in losses.items()
        )

    def step(self) -> None:
        if self._optimizer is not None:
            self._optimizer.step()
            self._optimizer.zero_grad(set_to_none=True)

    def weights(self) -> dict[str, float]:
        with torch.no_grad():
            return {t: float(torch.exp(-s)) for t, s in self.log_vars.items()}
