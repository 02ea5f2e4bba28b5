"""Architectures: a trunk combined with task heads. Each answers ``forward(x, task)`` and
``shared_parameters()``; ``ARCHITECTURES`` maps the name used in a study to its class."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from mtl_core.models.hard_sharing import HardSharing
from mtl_core.tasks import TaskSpec

ARCHITECTURES: dict[str, type[nn.Module]] = {"hard_sharing": HardSharing}


def build_model(
    architecture: str,
    input_dim: int,
    tasks: Sequence[TaskSpec],
    hidden_size: int,
    depth: int,
    activation: str,
    dropout: float,
) -> nn.Module:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture {architecture!r}: use one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[architecture](input_dim, tasks, hidden_size, depth, activation, dropout)


__all__ = ["ARCHITECTURES", "HardSharing", "build_model"]
