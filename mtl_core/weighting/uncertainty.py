"""``uncertainty`` (Kendall et al. 2018, "Multi-task learning using uncertainty to weigh
losses"): ``sum_t exp(-s_t) L_t + s_t`` with a learned ``s_t = log sigma_t^2`` per task; a
noisier task learns a larger ``s_t``, so a smaller weight ``exp(-s_t)`` (the logged weight)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from mtl_core.weighting.loss_weighting import LossWeighting


class Uncertainty(LossWeighting):
    per_step = True

    def __init__(self, tasks, sizes, weights) -> None:
        super().__init__(tasks, sizes, {t: 1.0 for t in tasks})
        self.log_vars = torch.nn.ParameterDict(
            {t: torch.nn.Parameter(torch.zeros(())) for t in tasks}
        )
        self._optimizer: torch.optim.Optimizer | None = None

    def bind(self, model, lr) -> None:
        device = next(model.parameters()).device
        self.log_vars.to(device)
        self._optimizer = torch.optim.Adam(self.log_vars.parameters(), lr=max(lr, 0.01))

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
