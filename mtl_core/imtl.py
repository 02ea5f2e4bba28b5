"""``imtl`` (Liu et al. 2021, "Towards impartial multi-task learning", ICLR): the paper's
hybrid, IMTL-L's learned loss scales with IMTL-G's gradient balance.

- IMTL-L: each task's loss is scaled by ``e^{s_t}``, and ``s_t`` minimises
  ``e^{s_t} L_t - s_t`` (its own Adam, at the model's rate), whose minimum is
  ``e^{s_t} L_t = 1``: every scaled loss is driven to the same value, whatever the task's units.
- IMTL-G: the shared parameters' gradient combines the scaled losses' gradients with torchjd's
  ``IMTLG`` weights (equal projections of the update on every task's gradient direction); the
  heads get their scaled losses' gradients.

The logged weight of task ``t`` is ``alpha_t e^{s_t}``: IMTL-G's weight on the scaled loss
times the scale. It combines every task's gradients in each step, so it needs ``joint``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mtl_core.gradients import GradientMethod


class IMTL(GradientMethod):
    def __init__(self, name: str, tasks: Sequence[str], mode: str = "parameters", **settings):
        super().__init__(name, tasks, mode, **settings)
        self.s = torch.nn.Parameter(torch.zeros(len(self.tasks)))
        self._optimizer: torch.optim.Optimizer | None = None

    def bind(self, model: torch.nn.Module, lr: float) -> None:
        super().bind(model, lr)
        device = next(model.parameters()).device
        self.s = torch.nn.Parameter(torch.zeros(len(self.tasks), device=device))
        self._optimizer = torch.optim.Adam([self.s], lr=lr)

    def backward(self, model, losses, features) -> dict[str, float] | None:
        names = [t for t in self.tasks if t in losses]
        rows = [self.tasks.index(t) for t in names]
        scale = torch.exp(self.s.detach()[rows])
        scaled = {t: scale[i] * losses[t] for i, t in enumerate(names)}
        weights = super().backward(model, scaled, features)
        grad = torch.zeros_like(self.s)
        grad[rows] = scale * torch.stack([losses[t].detach() for t in names]) - 1
        self.s.grad = grad  # d/ds (e^s L - s)
        if weights is None:
            return None
        return {t: weights[t] * float(scale[i]) for i, t in enumerate(names)}

    def step(self) -> None:
        if self._optimizer is not None:
            self._optimizer.step()
            self._optimizer.zero_grad(set_to_none=True)

    def scales(self) -> dict[str, float]:
        """Each task's loss scale ``e^{s_t}``."""
        return {t: float(v) for t, v in zip(self.tasks, torch.exp(self.s.detach()), strict=True)}
