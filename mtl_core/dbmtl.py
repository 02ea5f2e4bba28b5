"""``db_mtl`` (Lin et al. 2023, "Dual-balancing for multi-task learning"): balance the tasks'
loss scales and their gradient magnitudes, both.

- Loss scale: each task contributes ``log L_t`` (the log turns a task's units into an
  additive constant, which no gradient sees).
- Gradient magnitude: each task's gradient of the shared parameters (of its log loss) enters
  a running average ``g_t <- grad_t + (beta / k^sigma) (g_t - grad_t)`` at step ``k``
  (``training.db_mtl_beta``, ``training.db_mtl_sigma``), and the update is
  ``sum_t (max_s |g_s| / |g_t|) g_t``: every task's averaged gradient rescaled to the largest
  norm among them. The heads get their own log losses' gradients.

The averaging is state over the shared parameters' gradients, so it runs with ``gradients:
parameters`` only. The aggregator is ours (torchjd has none), written to torchjd's
``Aggregator`` interface so that ``mtl_backward`` and ``jac_to_grad`` drive it.
"""

from __future__ import annotations

import torch
from torchjd.aggregation import Aggregator

from mtl_core.gradients import GradientMethod

EPS = 1e-8


class DBMTLAggregator(Aggregator):
    def __init__(self, beta: float = 0.9, sigma: float = 0.5) -> None:
        super().__init__()
        self.beta, self.sigma = float(beta), float(sigma)
        self.buffer: torch.Tensor | None = None
        self.k = 0

    def forward(self, matrix: torch.Tensor, /) -> torch.Tensor:
        self.k += 1
        if self.buffer is None or self.buffer.shape != matrix.shape:
            self.buffer = torch.zeros_like(matrix)
        decay = self.beta / self.k**self.sigma
        self.buffer = (matrix + decay * (self.buffer - matrix)).detach()
        norms = self.buffer.norm(dim=1)
        scale = norms.max() / (norms + EPS)
        return (scale[:, None] * self.buffer).sum(dim=0)


class DBMTL(GradientMethod):
    def backward(self, model, losses, features) -> dict[str, float] | None:
        logs = {t: torch.log(loss + EPS) for t, loss in losses.items()}
        super().backward(model, logs, features)
        return None
