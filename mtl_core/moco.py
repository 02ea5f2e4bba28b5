"""``moco`` (Fernando et al. 2023, "Mitigating gradient bias in multi-objective learning: a
provably convergent approach", ICLR): MGDA-like weights computed from *tracked* task
gradients, so that the stochastic noise of one batch does not bias the direction.

At step ``k``, with ``g_t`` task ``t``'s gradient of the shared parameters (LibMTL's form,
which the paper's multi-task experiments use: ``g_t / |g_t| * L_t``, each task's gradient at
the length of its loss):

- tracking: ``y_t <- y_t - (beta / k^beta_sigma) (y_t - g_t)`` (``training.moco_beta``,
  ``training.moco_beta_sigma``), from ``y = 0``;
- weights: ``lambda <- softmax(lambda - (gamma / k^gamma_sigma) (Y Y^T + rho I) lambda)``
  (``training.moco_gamma``, ``moco_gamma_sigma``, ``moco_rho``), from ``lambda = 1/T``: a
  step of gradient descent on ``|Y^T lambda|^2 / 2 + rho |lambda|^2 / 2``, kept on the
  simplex by a softmax (LibMTL's choice; the paper projects onto the simplex);
- update: ``Y^T lambda``. The heads get their own losses' gradients.

The logged weight of task ``t`` is ``lambda_t``. The tracking is state over the shared
parameters' gradients, so it runs with ``gradients: parameters`` only. The aggregator is ours
(torchjd has none), written to torchjd's ``Aggregator`` interface so that ``mtl_backward``
and ``jac_to_grad`` drive it.
"""

from __future__ import annotations

import torch
from torchjd.aggregation import Aggregator

from mtl_core.gradients import GradientMethod

EPS = 1e-8


class MoCoAggregator(Aggregator):
    def __init__(
        self,
        beta: float = 0.5,
        beta_sigma: float = 0.5,
        gamma: float = 0.1,
        gamma_sigma: float = 0.5,
        rho: float = 0.0,
    ) -> None:
        super().__init__()
        self.beta, self.beta_sigma = float(beta), float(beta_sigma)
        self.gamma, self.gamma_sigma, self.rho = float(gamma), float(gamma_sigma), float(rho)
        self.losses: torch.Tensor | None = None  # this step's task losses, set before a call
        self.y: torch.Tensor | None = None
        self.lambd: torch.Tensor | None = None
        self.k = 0

    def forward(self, matrix: torch.Tensor, /) -> torch.Tensor:
        n = matrix.shape[0]
        if self.y is None or self.y.shape != matrix.shape:  # a fresh start: k counts from it
            self.y, self.k = torch.zeros_like(matrix), 0
            self.lambd = torch.full((n,), 1.0 / n, dtype=matrix.dtype, device=matrix.device)
        self.k += 1
        scale = torch.ones(n, dtype=matrix.dtype, device=matrix.device)
        if self.losses is not None:
            scale = self.losses.to(matrix) / (matrix.norm(dim=1) + EPS)
        g = scale[:, None] * matrix
        self.y = (self.y - self.beta / self.k**self.beta_sigma * (self.y - g)).detach()
        gramian = self.y @ self.y.T + self.rho * torch.eye(
            n, dtype=matrix.dtype, device=matrix.device
        )
        step = self.gamma / self.k**self.gamma_sigma
        self.lambd = torch.softmax(self.lambd - step * gramian @ self.lambd, dim=-1).detach()
        return self.y.T @ self.lambd


class MoCo(GradientMethod):
    def backward(self, model, losses, features) -> dict[str, float] | None:
        names = [t for t in self.tasks if t in losses]
        self.aggregator.losses = torch.stack([losses[t].detach() for t in names])
        super().backward(model, losses, features)
        lambd = self.aggregator.lambd
        return {t: float(w) for t, w in zip(names, lambd.tolist(), strict=True)}
