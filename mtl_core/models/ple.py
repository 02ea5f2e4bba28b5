"""Customized gate control and progressive layered extraction (Tang et al. 2020, "Progressive
layered extraction (PLE): a novel multi-task learning (MTL) model for personalized
recommendations", RecSys): experts of two kinds, shared and task-specific, mixed by per-task
gates; the standard for tabular and recommender multi-task models.

``cgc`` is one level (Customized Gate Control): ``model.shared_experts`` shared experts and
``model.task_experts`` experts of each task's own, each a trunk; task ``t`` sees
``sum_e g_t(x)_e * expert_e(x)`` over its own and the shared experts, ``g_t(x) = softmax(W_t
x)``, then its head. ``ple`` stacks ``model.ple_levels`` such levels: at every level but the
last, a shared gate also mixes every expert of the level (every task's and the shared ones)
into the shared representation the next level's shared experts read, while task ``t``'s
experts of the next level read task ``t``'s mixture. Experts after the first level are one
hidden layer (``Linear(hidden, hidden)``, the activation, dropout).

What is shared, for gradient methods: the shared experts, and everything before the last
level (every task's experts and gates there feed the shared gate, so every task). A task's
own parameters are its experts and gate of the last level and its head.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from mtl_core.models.base import MultiTaskModel, linear_heads
from mtl_core.models.mlp import ACTIVATIONS, Trunk
from mtl_core.models.sparse_input import SparseLinear
from mtl_core.tasks import TaskSpec


class PLE(MultiTaskModel):
    def __init__(
        self,
        trunk: Trunk,
        tasks: Sequence[TaskSpec],
        shared_experts: int = 2,
        task_experts: int = 1,
        levels: int = 2,
    ) -> None:
        super().__init__()
        if shared_experts < 1 or task_experts < 1 or levels < 1:
            raise ValueError("cgc/ple need at least one shared and one task expert per level")
        self.names = [t.name for t in tasks]
        self.levels, self.n_shared, self.n_task = levels, shared_experts, task_experts
        width, hidden = math.prod(trunk.input_shape), trunk.hidden_size

        def expert(level: int) -> nn.Module:
            if level == 0:
                return nn.Sequential(*trunk.blocks())
            layers = [nn.Linear(hidden, hidden), ACTIVATIONS[trunk.activation]()]
            return nn.Sequential(*layers, *([nn.Dropout(trunk.dropout)] if trunk.dropout else []))

        def gate(level: int, n: int) -> nn.Module:
            return SparseLinear(width, n) if level == 0 else nn.Linear(hidden, n)

        n_level = len(self.names) * task_experts + shared_experts
        self.shared_experts = nn.ModuleList(
            nn.ModuleList(expert(lv) for _ in range(shared_experts)) for lv in range(levels)
        )
        self.task_experts = nn.ModuleList(
            nn.ModuleDict(
                {t: nn.ModuleList(expert(lv) for _ in range(task_experts)) for t in self.names}
            )
            for lv in range(levels)
        )
        self.task_gates = nn.ModuleList(
            nn.ModuleDict({t: gate(lv, task_experts + shared_experts) for t in self.names})
            for lv in range(levels)
        )
        self.shared_gates = nn.ModuleList(gate(lv, n_level) for lv in range(levels - 1))
        self.heads = linear_heads(tasks, hidden, trunk)

    @staticmethod
    def _mix(gate: nn.Module, read, outputs: list[torch.Tensor]) -> torch.Tensor:
        weights = torch.softmax(gate(read), dim=-1)  # (batch, experts)
        return torch.einsum("be,ebh->bh", weights, torch.stack(outputs))

    def shared(self, x) -> torch.Tensor:
        """Every level but the last, then the last level's shared experts: with one level,
        the shared experts' outputs (shared, batch, hidden); with more, each task's input of
        the last level, then the shared experts' outputs (tasks + shared, batch, hidden)."""
        reads = dict.fromkeys(self.names, x)  # each task's representation so far
        common = x
        for level in range(self.levels - 1):
            own = {t: [e(reads[t]) for e in self.task_experts[level][t]] for t in self.names}
            shared = [e(common) for e in self.shared_experts[level]]
            every = [o for t in self.names for o in own[t]] + shared
            common = self._mix(self.shared_gates[level], common, every)
            reads = {
                t: self._mix(self.task_gates[level][t], reads[t], own[t] + shared)
                for t in self.names
            }
        last = [e(common) for e in self.shared_experts[-1]]
        if self.levels == 1:
            return torch.stack(last)
        return torch.stack([reads[t] for t in self.names] + last)

    def head(self, task: str, z: torch.Tensor, x) -> torch.Tensor:
        level = self.levels - 1
        read = x if self.levels == 1 else z[self.names.index(task)]
        shared = list(z[-self.n_shared :].unbind(0))
        own = [e(read) for e in self.task_experts[level][task]]
        return self.heads[task](self._mix(self.task_gates[level][task], read, own + shared))

    def gate_weights(self, x, task: str) -> torch.Tensor:
        """Task ``task``'s last-level gate: its own experts first, then the shared ones."""
        with torch.no_grad():
            z = self.shared(x)
            read = x if self.levels == 1 else z[self.names.index(task)]
            return torch.softmax(self.task_gates[self.levels - 1][task](read), dim=-1)

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        for level in range(self.levels - 1):
            yield from self.task_experts[level].parameters()
            yield from self.task_gates[level].parameters()
            yield from self.shared_gates[level].parameters()
            yield from self.shared_experts[level].parameters()
        yield from self.shared_experts[-1].parameters()

    def last_shared_layer(self) -> list[nn.Parameter]:
        """Every last-level shared expert's last layer."""
        return [[p for p in e.parameters() if p.dim() >= 2][-1] for e in self.shared_experts[-1]]

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        yield from self.task_experts[-1][task].parameters()
        yield from self.task_gates[-1][task].parameters()
        yield from self.heads[task].parameters()


# One PLE level: customized gate control (the registry's `cgc`).
CGC = functools.partial(PLE, levels=1)
