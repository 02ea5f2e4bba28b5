"""What every architecture answers, so that the loop, the gradient methods and the
diagnostics treat them alike.

``forward(x, task)`` is ``head(task, shared(x), x)``: ``shared`` computes the representation
that the tasks have in common (the input of the task-specific parts), ``head`` the task's
logits from it. Gradient methods differentiate the task losses with respect to the shared
representation (``gradients: features``) or to ``shared_parameters()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from mtl_core.models.mlp import ACTIVATIONS
from mtl_core.tasks import TaskSpec


def linear_heads(tasks: Sequence[TaskSpec], width: int, trunk: Any = None) -> nn.ModuleDict:
    """One head per task, from ``width`` features to the task's outputs: linear, or with the
    trunk's ``head_layers`` > 0 a task tower of that many hidden layers (``head_hidden``
    wide, default ``width``; the trunk's activation), the task's own parameters."""
    layers = getattr(trunk, "head_layers", 0)
    if not layers:
        return nn.ModuleDict({t.name: nn.Linear(width, t.head_size) for t in tasks})
    hidden = getattr(trunk, "head_hidden", 0) or width
    act = ACTIVATIONS[trunk.activation]

    def tower(out: int) -> nn.Sequential:
        parts: list[nn.Module] = []
        size = width
        for _ in range(layers):
            parts += [nn.Linear(size, hidden), act()]
            size = hidden
        return nn.Sequential(*parts, nn.Linear(size, out))

    return nn.ModuleDict({t.name: tower(t.head_size) for t in tasks})


class MultiTaskModel(nn.Module):
    def shared(self, x) -> torch.Tensor:
        raise NotImplementedError

    def head(self, task: str, z: torch.Tensor, x) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x, task: str) -> torch.Tensor:
        return self.head(task, self.shared(x), x)

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        raise NotImplementedError

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The weight matrices of the last shared layer, every copy of it (each expert's,
        each tower's): where GradNorm measures the tasks' gradient norms. One trunk: its
        last matrix; an architecture of several shared branches says which."""
        matrices = [p for p in self.shared_parameters() if p.dim() >= 2]
        return matrices[-1:]

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        raise NotImplementedError

    def regularization(self) -> torch.Tensor | None:
        """A penalty added to every step's loss (soft sharing); None when there is none."""
        return None
