"""Trunks: the layers an architecture shares (or gives each task a copy of), as a list of
*blocks* so that cross-stitch units can mix task towers between them.

- ``mlp``: ``depth`` blocks of ``hidden_size`` units with an activation and dropout. The first
  layer is a ``SparseLinear``: it reads CSR batches without densifying them (and flattens dense
  inputs).
- ``conv``: for image inputs (rows of H×W or H×W×C): ``depth`` blocks of 3×3 convolution,
  activation and 2×2 max-pooling (16, 32, 64 ... channels; pooling stops at 2×2), then a
  block that flattens into ``hidden_size`` units. Channels-last rows are turned
  channels-first inside the trunk, so arrays go in as users hold them.
- ``auto``: ``conv`` when a row is an image, ``mlp`` otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from mtl_core.models.sparse_input import SparseLinear

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}
TRUNKS = ("auto", "mlp", "conv")


def resolve_trunk(trunk: str, input_shape: Sequence[int]) -> str:
    if trunk not in TRUNKS:
        raise ValueError(f"trunk {trunk!r}: use one of {', '.join(TRUNKS)}")
    if trunk == "auto":
        return "conv" if len(input_shape) >= 2 else "mlp"
    if trunk == "conv" and len(input_shape) not in (2, 3):
        raise ValueError(
            f"the conv trunk needs image rows (H×W or H×W×C); these rows have shape "
            f"{tuple(input_shape)}"
        )
    return trunk


@dataclass(frozen=True)
class Trunk:
    """What a trunk is made of; ``blocks()`` builds a fresh one (each call: new weights)."""

    input_shape: tuple[int, ...]
    hidden_size: int = 200
    depth: int = 1
    activation: str = "sigmoid"
    dropout: float = 0.0
    kind: str = "auto"  # auto | mlp | conv
    head_layers: int = 0  # hidden layers in each task's head (a task tower); 0: linear heads
    head_hidden: int = 0  # their width (0: hidden_size)
    # a trunk of the user's: makes one block per call (``mtl_core.models.user_trunk``)
    maker: Callable[[], nn.Module] | None = field(default=None, compare=False)

    def blocks(self) -> list[nn.Sequential]:
        if self.maker is not None:
            return [nn.Sequential(self.maker())]
        return trunk_blocks(
            self.kind, self.input_shape, self.hidden_size, self.depth, self.activation, self.dropout
        )


def trunk_blocks(
    trunk: str,
    input_shape: Sequence[int],
    hidden_size: int,
    depth: int,
    activation: str,
    dropout: float,
) -> list[nn.Sequential]:
    """The trunk's blocks; each maps one representation to the next, the last to
    ``hidden_size`` features."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r}: use one of {', '.join(ACTIVATIONS)}")
    if depth < 1 or hidden_size < 1:
        raise ValueError("depth and hidden_size must be at least 1")
    if resolve_trunk(trunk, input_shape) == "conv":
        return _conv_blocks(tuple(input_shape), hidden_size, depth, activation, dropout)
    blocks = []
    width = math.prod(input_shape)
    for layer in range(depth):
        linear = SparseLinear(width, hidden_size) if layer == 0 else nn.Linear(width, hidden_size)
        layers: list[nn.Module] = [linear, ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        blocks.append(nn.Sequential(*layers))
        width = hidden_size
    return blocks


class ChannelsFirst(nn.Module):
    """(B, H, W) -> (B, 1, H, W); (B, H, W, C) -> (B, C, H, W)."""

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.channels_last = len(input_shape) == 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2) if self.channels_last else x.unsqueeze(1)


def _conv_blocks(
    input_shape: tuple[int, ...], hidden_size: int, depth: int, activation: str, dropout: float
) -> list[nn.Sequential]:
    channels = input_shape[2] if len(input_shape) == 3 else 1
    height, width = input_shape[0], input_shape[1]
    blocks = []
    for layer in range(depth):
        out = 16 * 2**layer
        layers: list[nn.Module] = [ChannelsFirst(input_shape)] if layer == 0 else []
        layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1), ACTIVATIONS[activation]()]
        if min(height, width) >= 4:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        blocks.append(nn.Sequential(*layers))
        channels = out
    last: list[nn.Module] = [
        nn.Flatten(),
        nn.Linear(channels * height * width, hidden_size),
        ACTIVATIONS[activation](),
    ]
    if dropout > 0:
        last.append(nn.Dropout(dropout))
    blocks.append(nn.Sequential(*last))
    return blocks
