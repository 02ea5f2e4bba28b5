"""Hard parameter sharing (Caruana 1997): one shared trunk, one linear head per task."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from mtl_core.models.mlp import mlp_trunk
from mtl_core.tasks import TaskSpec


class HardSharing(nn.Module):
    """``forward(x, task)`` runs the shared trunk and the task's head and returns logits."""

    def __init__(
        self,
        input_dim: int,
        tasks: Sequence[TaskSpec],
        hidden_size: int = 200,
        depth: int = 1,
        activation: str = "sigmoid",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.trunk = mlp_trunk(input_dim, hidden_size, depth, activation, dropout)
        self.heads = nn.ModuleDict({t.name: nn.Linear(hidden_size, t.head_size) for t in tasks})

    def forward(self, x: torch.Tensor, task: str) -> torch.Tensor:
        return self.heads[task](self.trunk(x))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.trunk.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return self.heads[task].parameters()
