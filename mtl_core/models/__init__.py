"""Architectures: trunks combined with task heads. Each answers ``forward(x, task)``,
``shared(x)``/``head(task, z, x)``, ``shared_parameters()`` and ``task_parameters(task)``;
``ARCHITECTURES`` maps the name used in a study to its class."""

from __future__ import annotations

from collections.abc import Sequence

from mtl_core.models.base import MultiTaskModel
from mtl_core.models.cross_stitch import CrossStitch
from mtl_core.models.hard_sharing import HardSharing
from mtl_core.models.mlp import Trunk
from mtl_core.models.mmoe import MMoE
from mtl_core.models.soft_sharing import SoftSharing
from mtl_core.tasks import TaskSpec

ARCHITECTURES: dict[str, type[MultiTaskModel]] = {
    "hard_sharing": HardSharing,
    "soft_sharing": SoftSharing,
    "cross_stitch": CrossStitch,
    "mmoe": MMoE,
}


def build_model(
    architecture: str,
    input_shape: int | Sequence[int],
    tasks: Sequence[TaskSpec],
    hidden_size: int,
    depth: int,
    activation: str,
    dropout: float,
    *,
    trunk: str = "auto",
    experts: int = 4,
    sharing_penalty: float = 0.01,
) -> MultiTaskModel:
    """``input_shape``: the shape of one row (an int for flat features)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture {architecture!r}: use one of {', '.join(ARCHITECTURES)}")
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    extra: dict = {}
    if architecture == "mmoe":
        extra["experts"] = experts
    elif architecture == "soft_sharing":
        extra["sharing_penalty"] = sharing_penalty
    spec = Trunk(shape, hidden_size, depth, activation, dropout, trunk)
    return ARCHITECTURES[architecture](spec, tasks, **extra)


__all__ = [
    "ARCHITECTURES",
    "CrossStitch",
    "HardSharing",
    "MMoE",
    "MultiTaskModel",
    "SoftSharing",
    "Trunk",
    "build_model",
]
