"""Architectures: trunks combined with task heads, one file each. Each answers
``forward(x, task)``, ``shared(x)``/``head(task, z, x)``, ``shared_parameters()`` and
``task_parameters(task)``; ``mtl_core.registry.ARCHITECTURES`` maps the name used in a study
to its class and declares its hyperparameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtl_core.models.base import MultiTaskModel
from mtl_core.models.cross_stitch import CrossStitch
from mtl_core.models.hard_sharing import HardSharing
from mtl_core.models.mlp import Trunk
from mtl_core.models.mmoe import MMoE
from mtl_core.models.soft_sharing import SoftSharing
from mtl_core.models.user_trunk import is_user_trunk, trunk_maker
from mtl_core.registry import ARCHITECTURES
from mtl_core.tasks import TaskSpec


def build_model(
    architecture: str,
    input_shape: int | Sequence[int],
    tasks: Sequence[TaskSpec],
    hidden_size: int,
    depth: int,
    activation: str,
    dropout: float,
    *,
    trunk: Any = "auto",
    trunk_options: Mapping[str, Any] | None = None,
    **settings: Any,
) -> MultiTaskModel:
    """``input_shape``: the shape of one row (an int for flat features). ``settings``: the
    architecture's own hyperparameters by their study names (``experts`` for mmoe,
    ``sharing_penalty`` for soft_sharing; ``mtl_core.registry``) and ``head_layers`` /
    ``head_hidden`` (task towers, every architecture); others are ignored. ``trunk``: auto, mlp,
    conv, or a trunk of the user's (``mtl_core.models.user_trunk``) with ``trunk_options``."""
    entry = ARCHITECTURES.entry(architecture)
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    head_layers, head_hidden = (
        int(settings.get("head_layers", 0)),
        int(settings.get("head_hidden", 0)),
    )
    if head_layers < 0 or head_hidden < 0:
        raise ValueError("head_layers and head_hidden must be at least 0")
    maker = None
    if is_user_trunk(trunk):  # the user's module: its features' width is what heads read
        maker, width = trunk_maker(trunk, trunk_options or {}, shape, hidden_size)
        trunk, hidden_size = "mlp", width  # (the kind is not read when a maker is given)
    spec = Trunk(
        shape, hidden_size, depth, activation, dropout, trunk, head_layers, head_hidden, maker
    )
    return entry.load()(spec, tasks, **entry.arguments(settings))


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
