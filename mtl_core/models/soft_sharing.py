"""Soft parameter sharing (Duong et al. 2015): one tower per task, tied by an L2 penalty.

Each task has a trunk of its own; ``regularization()`` is ``penalty * sum_t ||theta_t -
mean(theta)||^2`` over corresponding tower parameters, which pulls the towers towards each
other without making them equal (``penalty`` 0: separate models; large: hard sharing). Nothing
is shared outright, so gradient methods over shared parameters do not apply.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from mtl_core.models.base import MultiTaskModel, linear_heads
from mtl_core.models.mlp import Trunk
from mtl_core.tasks import TaskSpec


class SoftSharing(MultiTaskModel):
    has_shared_representation = False

    def __init__(
        self,
        trunk: Trunk,
        tasks: Sequence[TaskSpec],
        sharing_penalty: float = 0.01,
    ) -> None:
        super().__init__()
        self.penalty = float(sharing_penalty)
        self.towers = nn.ModuleDict({t.name: nn.Sequential(*trunk.blocks()) for t in tasks})
        self.heads = linear_heads(tasks, trunk.hidden_size, trunk)

    def forward(self, x, task: str) -> torch.Tensor:
        return self.heads[task](self.towers[task](x))

    def shared(self, x) -> torch.Tensor:
        raise TypeError("soft_sharing has no shared representation: each task has its own tower")

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return iter(())

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        yield from self.towers[task].parameters()
        yield from self.heads[task].parameters()

    def regularization(self) -> torch.Tensor | None:
        if self.penalty == 0 or len(self.towers) < 2:
            return None
        towers = [list(t.parameters()) for t in self.towers.values()]
        total = towers[0][0].new_zeros(())
        for same in zip(*towers, strict=True):
            stacked = torch.stack(same)
            total = total + (stacked - stacked.mean(dim=0)).pow(2).sum()
        return self.penalty * total
