"""MTAN, the multi-task attention network (Liu, Johns & Davison 2019, "End-to-end multi-task
learning with attention", CVPR): one shared network computes global features; each task
reads them through soft-attention masks of its own, one per block, so that a task picks the
features it needs at every depth.

With the trunk's blocks ``G_1 .. G_L`` (for the conv trunk: its convolution blocks, then its
dense layer; for the MLP: its layers) the global features are ``c_j = G_j(c_{j-1})``, ``c_0 =
x``. Task ``t``'s attended features are ``a_1 = m_1([c_1]) * c_1`` and ``a_j = m_j([c_j ;
F_j(a_{j-1})]) * c_j``, where ``m_j`` is the task's attention module (1x1 convolution, ReLU,
1x1 convolution, sigmoid over feature maps; the same with linear layers over vectors: the
paper's module without its batch normalisation, which our trunks do not use) and ``F_j`` a
block shaped like ``G_j`` that carries the task's attended features of the level before to
this level's shape (the paper's 3x3 convolution and pooling between levels). The task's head
reads ``a_L``.

Where this differs from the paper's code: the masks apply to each block's output (after its
pooling), and each ``F_j`` is the task's own (the paper's code shares them among tasks), so
that everything after the global features belongs to one task and gradient methods act on
the global network, as they do on every other architecture. ``shared(x)`` returns the
global features of every block, flattened side by side.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from mtl_core.models.base import MultiTaskModel, linear_heads
from mtl_core.models.mlp import Trunk
from mtl_core.tasks import TaskSpec


def attention_module(inputs: int, channels: int, maps: bool) -> nn.Sequential:
    """A soft mask over ``channels`` features from ``inputs`` features: feature maps
    (``maps``: 1x1 convolutions) or vectors (linear layers)."""
    layer = (lambda i, o: nn.Conv2d(i, o, kernel_size=1)) if maps else nn.Linear
    return nn.Sequential(
        layer(inputs, channels), nn.ReLU(), layer(channels, channels), nn.Sigmoid()
    )


class MTAN(MultiTaskModel):
    def __init__(self, trunk: Trunk, tasks: Sequence[TaskSpec]) -> None:
        super().__init__()
        self.names = [t.name for t in tasks]
        self.blocks = nn.ModuleList(trunk.blocks())
        self.shapes = self._output_shapes(trunk)
        self.attention = nn.ModuleDict(
            {
                t: nn.ModuleList(
                    attention_module(shape[0] * (1 if j == 0 else 2), shape[0], len(shape) == 3)
                    for j, shape in enumerate(self.shapes)
                )
                for t in self.names
            }
        )
        self.bridges = nn.ModuleDict(
            {t: nn.ModuleList(trunk.blocks()[1:]) for t in self.names}  # F_2 .. F_L
        )
        self.heads = linear_heads(tasks, trunk.hidden_size, trunk)

    def _output_shapes(self, trunk: Trunk) -> list[tuple[int, ...]]:
        """Each block's output shape for one row (a dry run on zeros, no randomness drawn)."""
        shapes, c = [], torch.zeros((1, *trunk.input_shape))
        self.blocks.eval()
        with torch.no_grad():
            for block in self.blocks:
                c = block(c)
                shapes.append(tuple(c.shape[1:]))
        self.blocks.train()
        return shapes

    def shared(self, x) -> torch.Tensor:
        """The global features of every block, each flattened: (batch, sum of their sizes)."""
        features, c = [], x
        for block in self.blocks:
            c = block(c)
            features.append(c.flatten(1))
        return torch.cat(features, dim=1)

    def _levels(self, z: torch.Tensor) -> list[torch.Tensor]:
        sizes = [math.prod(shape) for shape in self.shapes]
        return [
            part.reshape(-1, *shape)
            for part, shape in zip(z.split(sizes, dim=1), self.shapes, strict=True)
        ]

    def attend(self, task: str, z: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Task ``task``'s attention masks and attended features at every level."""
        masks: list[torch.Tensor] = []
        out: list[torch.Tensor] = []
        for j, c in enumerate(self._levels(z)):
            read = c if j == 0 else torch.cat([c, self.bridges[task][j - 1](out[-1])], dim=1)
            masks.append(self.attention[task][j](read))
            out.append(masks[-1] * c)
        return masks, out

    def head(self, task: str, z: torch.Tensor, x) -> torch.Tensor:
        return self.heads[task](self.attend(task, z)[1][-1])

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.blocks.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        yield from self.attention[task].parameters()
        yield from self.bridges[task].parameters()
        yield from self.heads[task].parameters()
