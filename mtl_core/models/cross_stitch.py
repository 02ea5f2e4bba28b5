"""Cross-stitch networks (Misra et al. 2016): one tower per task, mixed after every block.

After block ``l`` each task's representation becomes ``h_t = sum_s alpha_l[t, s] h_s``, a
learned linear combination of every tower's output. Units start at 0.9 on the diagonal and
share 0.1 among the others, as in the paper; with identity units the towers are separate
models. Every tower and unit feeds every task, so all of them are shared parameters; the
heads are the task parameters.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from mtl_core.models.base import MultiTaskModel, linear_heads
from mtl_core.models.mlp import Trunk
from mtl_core.tasks import TaskSpec


class CrossStitch(MultiTaskModel):
    def __init__(
        self,
        trunk: Trunk,
        tasks: Sequence[TaskSpec],
        self_weight: float = 0.9,
    ) -> None:
        super().__init__()
        self.names = [t.name for t in tasks]
        n = len(self.names)
        self.towers = nn.ModuleList(nn.ModuleList(trunk.blocks()) for _ in self.names)
        off = (1 - self_weight) / (n - 1) if n > 1 else 0.0
        init = torch.full((n, n), off) + torch.eye(n) * ((self_weight if n > 1 else 1.0) - off)
        self.units = nn.ParameterList(nn.Parameter(init.clone()) for _ in self.towers[0])
        self.heads = linear_heads(tasks, trunk.hidden_size, trunk)

    def shared(self, x) -> torch.Tensor:
        """Every task's stitched representation, stacked: (tasks, batch, hidden)."""
        outs = [x] * len(self.names)
        for depth, unit in enumerate(self.units):
            stacked = torch.stack(
                [tower[depth](h) for tower, h in zip(self.towers, outs, strict=True)]
            )
            mixed = torch.tensordot(unit, stacked, dims=([1], [0]))
            outs = list(mixed.unbind(0))
        return torch.stack(outs)

    def head(self, task: str, z: torch.Tensor, x) -> torch.Tensor:
        return self.heads[task](z[self.names.index(task)])

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.towers.parameters()
        yield from self.units.parameters()

    def last_shared_layer(self) -> list[nn.Parameter]:
        """Every tower's last layer; not the last stitch unit (a T x T mixing matrix, which
        the shared parameters also hold)."""
        return [[p for p in t.parameters() if p.dim() >= 2][-1] for t in self.towers]

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return self.heads[task].parameters()
