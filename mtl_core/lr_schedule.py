"""The learning rate per epoch (``training.lr_schedule``), as a factor on ``training.lr`` that
torch's ``LambdaLR`` applies after each epoch:

- a linear warm-up over the first ``lr_warmup_epochs`` epochs: ``(e + 1) / (w + 1)`` in epoch
  ``e`` (0-based), so the first epoch trains at ``lr / (w + 1)`` and epoch ``w`` at ``lr``;
- then ``constant`` (1), ``cosine`` (``(1 + cos(pi k / n)) / 2`` in the ``k``-th of the ``n``
  epochs after the warm-up: from 1 towards 0, never 0 itself) or ``step`` (``lr_gamma`` to the
  power of ``k // lr_step_every``).

Single-task baselines train with the same schedule (it is part of their key).
"""

from __future__ import annotations

import math
from typing import Any


def lr_factor(config: Any, epoch: int, epochs: int) -> float:
    """The factor on ``training.lr`` in ``epoch`` (0-based) of ``epochs``."""
    warmup = config.lr_warmup_epochs
    if epoch < warmup:
        return (epoch + 1) / (warmup + 1)
    k, n = epoch - warmup, max(1, epochs - warmup)
    if config.lr_schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * k / n))
    if config.lr_schedule == "step":
        return config.lr_gamma ** (k // config.lr_step_every)
    if config.lr_schedule != "constant":
        raise ValueError(f"lr_schedule {config.lr_schedule!r}: use constant, cosine or step")
    return 1.0


def schedulers(config: Any, optimizers: dict, epochs: int) -> list:
    """One ``LambdaLR`` per optimiser, stepped once per epoch; none when the rate is constant."""
    if config.lr_schedule == "constant" and not config.lr_warmup_epochs:
        return []
    # here, not at the top: torch loads only when a model trains
    from torch.optim.lr_scheduler import LambdaLR

    return [LambdaLR(opt, lambda e: lr_factor(config, e, epochs)) for opt in optimizers.values()]
