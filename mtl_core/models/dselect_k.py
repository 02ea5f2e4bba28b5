"""DSelect-k (Hazimeh et al. 2021, "DSelect-k: differentiable selection in the mixture of
experts with applications to multi-task learning", NeurIPS): shared experts as in MMoE, but
each task's gate selects at most ``k`` of them, through a smooth binary encoding that
gradient descent can train.

For ``n`` experts (``model.experts``) let ``m = ceil(log2 n)``. A *selector* is ``m`` logits
``z``; with the cubic smooth-step ``S`` (0 below ``-gamma/2``, 1 above ``gamma/2``,
``-2/gamma^3 t^3 + 3/(2 gamma) t + 1/2`` between; ``model.dselect_gamma``) it puts weight
``r(z)_i = prod_l (S(z_l) if bit l of i is 1 else 1 - S(z_l))`` on expert ``i``: a
distribution over the ``2^m`` codes, one-hot once every ``z_l`` leaves the band. Task ``t``'s
gate has ``k`` selectors (``model.dselect_k``) and ``k`` logits ``alpha``, all read from the
input (the paper's per-example gate): ``q_t(x) = sum_i softmax(alpha(x))_i r(z_i(x))``, so at
most ``k`` experts carry weight once the selectors are binary. Selector logits start in
``[-gamma/100, gamma/100]``, where every expert weighs about the same.

Where ``n`` is not a power of two, codes ``n .. 2^m - 1`` name no expert: their weight is
dropped and the rest renormalised, with a floor of 1e-6 per expert so that a row whose
selectors all name missing experts reads a uniform mixture rather than zeros (our choice; the
paper's experiments use powers of two).
The paper's optional entropy penalty, which hastens binary selectors, is not applied: the
smooth-step's flat ends make a selector exactly binary once its logits leave the band.

Experts are the shared parameters; a task's gate and head are its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from mtl_core.models.mlp import Trunk
from mtl_core.models.mmoe import MMoE
from mtl_core.models.sparse_input import SparseLinear
from mtl_core.tasks import TaskSpec


def smooth_step(t: torch.Tensor, gamma: float) -> torch.Tensor:
    """The paper's cubic smooth-step: 0 and 1 outside ``[-gamma/2, gamma/2]``, continuously
    differentiable everywhere."""
    cubic = -2 / gamma**3 * t**3 + 3 / (2 * gamma) * t + 0.5
    return torch.where(t <= -gamma / 2, 0.0, torch.where(t >= gamma / 2, 1.0, cubic))


class DSelectGate(nn.Module):
    """One task's DSelect-k gate over ``experts`` experts."""

    def __init__(self, width: int, experts: int, k: int, gamma: float) -> None:
        super().__init__()
        if experts < 1 or k < 1 or gamma <= 0:
            raise ValueError("dselect_k needs experts >= 1, dselect_k >= 1, dselect_gamma > 0")
        self.experts, self.k, self.gamma = experts, k, gamma
        self.bits = max(1, math.ceil(math.log2(experts)))
        self.selectors = SparseLinear(width, k * self.bits)  # z, per example
        self.mixture = SparseLinear(width, k)  # alpha, per example
        for p in self.selectors.parameters():
            nn.init.uniform_(p, -gamma / 100, gamma / 100)
        codes = torch.tensor(
            [[(i >> b) & 1 for b in range(self.bits)] for i in range(2**self.bits)],
            dtype=torch.float32,
        )
        self.register_buffer("codes", codes, persistent=False)  # (2^m, m): bit l of code i

    def selections(self, x) -> torch.Tensor:
        """Each selector's distribution over the codes: (batch, k, 2^m)."""
        s = smooth_step(self.selectors(x).reshape(-1, self.k, 1, self.bits), self.gamma)
        return torch.prod(self.codes * s + (1 - self.codes) * (1 - s), dim=-1)

    def forward(self, x) -> torch.Tensor:
        """The weight of each expert: (batch, experts), rows summing to 1."""
        alpha = torch.softmax(self.mixture(x), dim=-1)  # (batch, k)
        q = torch.einsum("bk,bkc->bc", alpha, self.selections(x))[:, : self.experts]
        if self.experts < 2**self.bits:  # a floor, so that a row whose selectors all name
            q = q + 1e-6  # missing experts still reads every expert, not zeros
            q = q / q.sum(dim=-1, keepdim=True)
        return q


class DSelectK(MMoE):
    """MMoE's experts and heads; each task's gate a ``DSelectGate``."""

    def __init__(
        self,
        trunk: Trunk,
        tasks: Sequence[TaskSpec],
        experts: int = 4,
        k: int = 2,
        gamma: float = 1.0,
    ) -> None:
        super().__init__(trunk, tasks, experts)
        width = math.prod(trunk.input_shape)
        self.gates = nn.ModuleDict({t.name: DSelectGate(width, experts, k, gamma) for t in tasks})

    def mixture(self, task: str, x) -> torch.Tensor:
        return self.gates[task](x)
