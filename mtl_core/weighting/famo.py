"""``famo`` (Liu et al. 2023, "FAMO: fast adaptive multitask optimization", NeurIPS): learned
task logits ``xi`` with their own Adam (``training.famo_lr``, weight decay
``training.famo_decay``: the official example's 0.025 and 0.01), weights ``z = softmax(xi)``,
and the loss ``sum_t z_t log L_t / c`` with ``c = sum_t z_t / L_t`` (the losses shifted by
their minimum, 0, and 1e-8), so that every task's loss falls at about the same *rate*.

After the optimiser's step the loop computes the step's losses again on the same batch
(one extra forward, without gradients, as the official code does), and the logits move along
``d softmax(xi) / d xi`` times each task's drop in log loss: a task whose loss fell less gets
more weight. The logged weight of task ``t`` is its effective weight ``z_t / (c L_t)`` (the
weights sum to 1, not to T: a constant scale, harmless under Adam, not under SGD). It
combines every task's loss in each step, so it needs ``joint``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from mtl_core.weighting.loss_weighting import LossWeighting

EPS = 1e-8  # the official shift: log and 1/L stay finite for a loss at its minimum


class FAMO(LossWeighting):
    per_step = True
    needs_losses_after_step = True

    def __init__(self, tasks, sizes, weights, *, lr: float = 0.025, decay: float = 0.01) -> None:
        super().__init__(tasks, sizes, {t: 1.0 / len(tasks) for t in tasks})
        self.xi = torch.nn.Parameter(torch.zeros(len(self.tasks)))
        self.lr, self.decay = float(lr), float(decay)
        self._optimizer: torch.optim.Optimizer | None = None
        self._before: torch.Tensor | None = None

    def bind(self, model, lr) -> None:
        device = next(model.parameters()).device
        self.xi = torch.nn.Parameter(torch.zeros(len(self.tasks), device=device))
        self._optimizer = torch.optim.Adam([self.xi], lr=self.lr, weight_decay=self.decay)

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return iter([self.xi])

    def combine(self, losses):
        stacked = torch.stack([losses[t] for t in self.tasks]) + EPS
        self._before = stacked.detach()
        z = torch.softmax(self.xi.detach(), dim=0)
        c = (z / stacked).sum().detach()
        with torch.no_grad():
            effective = z / (c * stacked)
        self._weights = {t: float(w) for t, w in zip(self.tasks, effective, strict=True)}
        return (z * torch.log(stacked) / c).sum()

    def losses_after_step(self, losses) -> None:
        if self._before is None or self._optimizer is None:
            return
        after = torch.stack([losses[t] for t in self.tasks]).detach() + EPS
        drop = torch.log(self._before) - torch.log(after)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(torch.softmax(self.xi, dim=0), self.xi, drop)
        self._optimizer.zero_grad(set_to_none=True)
        self.xi.grad = grad
        self._optimizer.step()
