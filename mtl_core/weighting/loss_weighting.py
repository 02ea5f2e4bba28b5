"""Loss weighting: per-task losses become one objective, ``sum_t w_t * L_t``.

- ``equal``: every task weighs 1.
- ``static``: fixed weights given by the user, one per task.
- ``inverse_size``: ``w_t`` proportional to ``1 / n_t`` (training rows), scaled so that the
  weights average 1 and the loss keeps the scale of ``equal``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the weighting needs no torch import of its own: validation stays light
    import torch


class LossWeighting:
    """Weights that stay fixed for the whole run; adaptive methods override ``end_epoch``."""

    def __init__(
        self, tasks: Sequence[str], sizes: Mapping[str, int], weights: Mapping[str, float]
    ) -> None:
        self.tasks = list(tasks)
        self._weights = {t: float(weights[t]) for t in self.tasks}

    def weights(self) -> dict[str, float]:
        return dict(self._weights)

    def combine(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum(self._weights[t] * loss for t, loss in losses.items())  # type: ignore[return-value]

    def end_epoch(
        self, epoch: int, train_loss: Mapping[str, float], valid: Mapping[str, float]
    ) -> None:
        """Called after each epoch's validation; fixed weightings ignore it."""


class Equal(LossWeighting):
    def __init__(
        self, tasks: Sequence[str], sizes: Mapping[str, int], weights: Mapping[str, float]
    ) -> None:
        super().__init__(tasks, sizes, {t: 1.0 for t in tasks})


class Static(LossWeighting):
    @staticmethod
    def problems(tasks: Sequence[str], weights: Mapping[str, float]) -> list[str]:
        missing = [t for t in tasks if t not in weights]
        return (
            [
                f"`static` weighting needs a weight for every task; none given for {', '.join(missing)}"
            ]
            if missing
            else []
        )


class InverseSize(LossWeighting):
    def __init__(
        self, tasks: Sequence[str], sizes: Mapping[str, int], weights: Mapping[str, float]
    ) -> None:
        inverse = {t: 1.0 / max(1, sizes[t]) for t in tasks}
        mean = sum(inverse.values()) / len(inverse)
        super().__init__(tasks, sizes, {t: v / mean for t, v in inverse.items()})
