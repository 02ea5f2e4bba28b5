"""Hard parameter sharing (Caruana 1997): one shared trunk, one linear head per task."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from mtl_core.models.base import MultiTaskModel, linear_heads
from mtl_core.models.mlp import Trunk
from mtl_core.tasks import TaskSpec


class HardSharing(MultiTaskModel):
    """``forward(x, task)`` runs the shared trunk and the task's head and returns logits."""

    def __init__(
        self,
        trunk: Trunk,
        tasks: Sequence[TaskSpec],
    ) -> None:
        super().__init__()
        self.trunk = nn.Sequential(*[layer for block in trunk.blocks() for layer in block])
        self.heads = linear_heads(tasks, trunk.hidden_size, trunk)

    def shared(self, x) -> torch.Tensor:
        return self.trunk(x)

    def head(self, task: str, z: torch.Tensor, x) -> torch.Tensor:
        return self.heads[task](z)

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.trunk.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return self.heads[task].parameters()
