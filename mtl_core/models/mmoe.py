"""Multi-gate mixture of experts (Ma et al. 2018): shared experts, one softmax gate per task.

Each expert is a trunk; task ``t`` sees ``sum_e g_t(x)_e * expert_e(x)`` with its gate
``g_t(x) = softmax(W_t x)`` read from the input, then its head. Experts are the shared
parameters; a task's gate and head are its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from mtl_core.models.base import MultiTaskModel, linear_heads
from mtl_core.models.mlp import Trunk
from mtl_core.models.sparse_input import SparseLinear
from mtl_core.tasks import TaskSpec


class MMoE(MultiTaskModel):
    def __init__(
        self,
        trunk: Trunk,
        tasks: Sequence[TaskSpec],
        experts: int = 4,
    ) -> None:
        super().__init__()
        if experts < 1:
            raise ValueError("mmoe needs at least one expert")
        self.experts = nn.ModuleList(nn.Sequential(*trunk.blocks()) for _ in range(experts))
        width = math.prod(trunk.input_shape)
        self.gates = nn.ModuleDict({t.name: SparseLinear(width, experts) for t in tasks})
        self.heads = linear_heads(tasks, trunk.hidden_size, trunk)

    def shared(self, x) -> torch.Tensor:
        """Every expert's output: (batch, experts, hidden)."""
        return torch.stack([expert(x) for expert in self.experts], dim=1)

    def mixture(self, task: str, x) -> torch.Tensor:
        """Task ``task``'s weight on each expert: (batch, experts), rows summing to 1."""
        return torch.softmax(self.gates[task](x), dim=-1)

    def head(self, task: str, z: torch.Tensor, x) -> torch.Tensor:
        return self.heads[task](torch.einsum("be,beh->bh", self.mixture(task, x), z))

    def gate_weights(self, x, task: str) -> torch.Tensor:
        with torch.no_grad():
            return self.mixture(task, x)

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.experts.parameters()

    def last_shared_layer(self) -> list[nn.Parameter]:
        """Every expert's last layer (the experts are the shared part, side by side)."""
        return [[p for p in e.parameters() if p.dim() >= 2][-1] for e in self.experts]

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        yield from self.gates[task].parameters()
        yield from self.heads[task].parameters()
