"""Your own trunk: any ``torch.nn.Module`` as the shared part of every architecture.

``trunk`` (``TrainConfig.trunk``, ``build_model(trunk=...)``) may be, besides ``auto``,
``mlp`` and ``conv``:

- a factory's name, ``"package.module:function"`` (``mtl_core.trunk_factory``), called with
  ``trunk_options`` (and ``input_shape`` / ``hidden_size`` where it takes them): what a study
  file names, and what a saved model records;
- a callable that returns a fresh module (Python API);
- a module (Python API): the first copy of the trunk is that module, further copies (experts,
  towers) are deep copies with their parameters reset, so that they do not start alike.

The module reads a batch of rows shaped as the data's rows (sparse bag-of-words batches are
made dense, the whole batch at once) and returns features of any shape, flattened to
``(batch, F)``; ``F``, found by one forward pass on zeros, is the width the heads read, and
task towers (``head_hidden`` 0) and PLE's later levels are ``F`` wide too: ``hidden_size`` and
``depth`` do not shape such a trunk (a factory may take ``hidden_size``). Such a model is saved
by name only: a trunk given as a Python object cannot be written to ``model.json``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mtl_core.models.mlp import TRUNKS
from mtl_core.models.sparse_input import SparseBatch
from mtl_core.trunk_factory import arguments, is_factory_name, resolve


def is_user_trunk(trunk: object) -> bool:
    """Whether ``trunk`` names or is a trunk of the user's (not auto / mlp / conv)."""
    return not (isinstance(trunk, str) and trunk in TRUNKS)


class UserTrunk(nn.Module):
    """A user's module as one trunk block: dense rows of ``input_shape`` in, ``(batch, F)`` out."""

    def __init__(self, module: nn.Module, input_shape: Sequence[int]) -> None:
        super().__init__()
        self.module = module
        self.input_shape = tuple(input_shape)

    def forward(self, x: SparseBatch | torch.Tensor) -> torch.Tensor:
        if isinstance(x, SparseBatch):
            width = 1
            for d in self.input_shape:
                width *= d
            dense = x.values.new_zeros((x.rows, width))
            x = dense.index_put_((x.row_ids, x.indices), x.values, accumulate=True)
        return self.module(x.reshape(x.shape[0], *self.input_shape)).flatten(1)


def _reset(module: nn.Module) -> nn.Module:
    for part in module.modules():
        reset = getattr(part, "reset_parameters", None)
        if callable(reset):
            reset()
    return module


def trunk_maker(
    trunk: Any,
    options: Mapping[str, Any],
    input_shape: Sequence[int],
    hidden_size: int,
) -> tuple[Callable[[], nn.Module], int]:
    """A function that makes one trunk block per call, and the width ``F`` of its features."""
    if isinstance(trunk, nn.Module):
        instance, used = trunk, []

        def make() -> nn.Module:
            module = instance if not used else _reset(copy.deepcopy(instance))
            used.append(True)
            return module
    else:
        factory = resolve(trunk) if is_factory_name(trunk) else trunk
        if not callable(factory):
            raise ValueError(
                f"trunk {trunk!r}: use auto, mlp, conv, 'package.module:function', a callable "
                "or a torch.nn.Module"
            )
        given = arguments(factory, options, input_shape, hidden_size)
        label = trunk if isinstance(trunk, str) else getattr(trunk, "__name__", repr(trunk))

        def make() -> nn.Module:
            module = factory(**given)
            if not isinstance(module, nn.Module):
                raise TypeError(
                    f"trunk {label}: the factory returned a {type(module).__name__}, "
                    "not a torch.nn.Module"
                )
            return module

    first = UserTrunk(make(), input_shape)
    was_training = first.training
    first.eval()
    with torch.no_grad():
        width = first(torch.zeros((2, *input_shape))).shape[1]
    first.train(was_training)
    pending = [first]

    def block() -> nn.Module:
        return pending.pop() if pending else UserTrunk(make(), input_shape)

    return block, int(width)
