"""``gradnorm`` (Chen et al. 2018, "GradNorm: gradient normalization for adaptive loss
balancing"): learned weights; each step moves them so that the norms of the weighted task
gradients on the last shared layer approach ``mean norm * r_t^alpha``, ``r_t`` the task's
relative inverse training rate; weights renormalised to sum to T. ``alpha`` is
``training.gradnorm_alpha``. Needs the joint schedule.

The last shared layer is the model's ``last_shared_layer()``: the trunk's last matrix under
hard sharing, every expert's last matrix under MMoE, every tower's under cross-stitch (not the
last 2 x 2 stitch unit); the norm is taken over all of them together."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from mtl_core.weighting.loss_weighting import LossWeighting


class GradNorm(LossWeighting):
    """The weighted norm ``G_t = w_t * ||grad_W L_t||`` is linear in ``w_t``, so only the
    unweighted norms ``n_t`` are needed, and no gradient of a gradient: the balance loss
    ``sum_t |w_t n_t - target_t|`` is differentiated in ``w`` alone. When ``W`` is a dense
    ``nn.Linear`` weight, ``n_t^2 = sum(A A^T * D_t D_t^T)`` from the layer's input ``A`` and the
    task's gradient ``D_t`` at its output (B x B matrices: no per-task weight gradient is
    formed); otherwise each ``grad_W L_t`` is taken by autograd."""

    per_step = True
    LR = 0.025  # the paper's learning rate for the weights

    def __init__(self, tasks, sizes, weights, *, alpha: float = 1.5) -> None:
        super().__init__(tasks, sizes, {t: 1.0 for t in tasks})
        self.alpha = float(alpha)
        self.w = torch.nn.Parameter(torch.ones(len(self.tasks)))
        self._layer: torch.nn.Parameter | None = None
        self._layers: list[torch.nn.Parameter] = []
        self._initial: torch.Tensor | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._seen: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.last_norms: dict[str, float] = {}

    def bind(self, model, lr) -> None:
        layers = model.last_shared_layer()
        if not layers:
            raise ValueError("gradnorm needs an architecture with shared layers")
        self._layers = layers
        owners = [
            next((m for m in model.modules() if getattr(m, "weight", None) is p), None)
            for p in layers
        ]
        if all(isinstance(owner, torch.nn.Linear) for owner in owners):
            for owner in owners:
                owner.register_forward_hook(self._capture)
        self._layer = layers[0]
        self.w = torch.nn.Parameter(torch.ones(len(self.tasks), device=self._layer.device))
        self._optimizer = torch.optim.Adam([self.w], lr=self.LR)

    def _capture(self, module, inputs, output) -> None:
        if torch.is_grad_enabled() and output.requires_grad and inputs[0].dim() == 2:
            self._seen.append((inputs[0].detach(), output))

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return iter([self.w])

    def _norms(self, stacked: torch.Tensor) -> torch.Tensor:
        seen, self._seen = self._seen, []
        if not seen:
            return torch.stack(
                [
                    torch.stack(
                        [
                            g.pow(2).sum()
                            for g in torch.autograd.grad(
                                stacked[i], self._layers, retain_graph=True, allow_unused=True
                            )
                            if g is not None
                        ]
                    )
                    .sum()
                    .sqrt()
                    for i in range(len(self.tasks))
                ]
            )
        kernels = [a @ a.T for a, _ in seen]
        outputs = [h for _, h in seen]
        squares = []
        for i in range(len(self.tasks)):
            deltas = torch.autograd.grad(stacked[i], outputs, retain_graph=True, allow_unused=True)
            squares.append(
                sum(
                    (
                        (k * (d @ d.T)).sum()
                        for k, d in zip(kernels, deltas, strict=True)
                        if d is not None
                    ),
                    stacked.new_zeros(()),
                )
            )
        return torch.stack(squares).clamp_min(0).sqrt()

    def combine(self, losses):
        assert self._layer is not None, "bind(model, lr) first"
        stacked = torch.stack([losses[t] for t in self.tasks])
        if self._initial is None:
            self._initial = stacked.detach().clamp_min(1e-12)
        unweighted = self._norms(stacked).detach()
        weighted = self.w * unweighted
        with torch.no_grad():
            ratio = stacked.detach() / self._initial
            target = weighted.mean() * (ratio / ratio.mean()) ** self.alpha
        balance = (weighted - target).abs().sum()
        (self.w.grad,) = torch.autograd.grad(balance, self.w)
        self.last_norms = {t: float(n) for t, n in zip(self.tasks, weighted.detach(), strict=True)}
        weights = self.w.detach()
        self._weights = {t: float(v) for t, v in zip(self.tasks, weights, strict=True)}
        return (weights * stacked).sum()

    def after_backward(self) -> None:
        pass  # the weights' gradient was set in combine; the loss used them detached

    def step(self) -> None:
        if self._optimizer is None:
            return
        self._optimizer.step()
        self._optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            self.w.clamp_(min=1e-4)
            self.w.mul_(len(self.tasks) / self.w.sum())
