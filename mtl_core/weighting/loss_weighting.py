"""Fixed loss weightings: per-task losses become one objective, ``sum_t w_t * L_t``.

- ``equal``: every task weighs 1.
- ``static``: fixed weights given by the user, one per task.
- ``inverse_size``: ``w_t`` proportional to ``1 / n_t`` (labelled training rows), scaled so
  that the weights average 1 and the loss keeps the scale of ``equal``.

Every weighting sees each task's loss as the mean over that task's rows in the batch, so
losses are comparable whatever a task's size. Adaptive weightings (one file each beside this
one) override ``end_epoch``, ``step`` or ``combine``; their hyperparameters are keyword
arguments, declared in ``mtl_core.registry``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the weighting needs no torch import of its own: validation stays light
    import torch


class LossWeighting:
    """Weights that stay fixed for the whole run; adaptive methods override the hooks.

    The loop sees every loss weighting and gradient method (``mtl_core.gradients``) through
    one interface: ``bind(model, lr)`` once, then per step ``backward(model, losses,
    features)`` (fills every ``.grad`` and returns the task weights it used this step, or
    None) and ``step()`` after the optimiser's step, and ``end_epoch(...)`` after each
    epoch's validation; ``weights()`` are the weights to log when a step returned none."""

    per_step = False  # True: weights change within an epoch; the loop logs their epoch mean
    # True: after the optimiser's step the loop computes the step's losses again, on the same
    # batch without gradients, and hands them to ``losses_after_step`` (FAMO's extra forward)
    needs_losses_after_step = False

    def __init__(
        self,
        tasks: Sequence[str],
        sizes: Mapping[str, int],
        weights: Mapping[str, float],
    ) -> None:
        self.tasks = list(tasks)
        self._weights = {t: float(weights[t]) for t in self.tasks}

    def bind(self, model: torch.nn.Module, lr: float) -> None:
        """Called once the model exists (methods with parameters of their own)."""

    def weights(self) -> dict[str, float]:
        return dict(self._weights)

    def combine(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum(self._weights[t] * loss for t, loss in losses.items())  # type: ignore[return-value]

    def backward(
        self,
        model: torch.nn.Module,
        losses: Mapping[str, torch.Tensor],
        features: Mapping[str, torch.Tensor],
    ) -> dict[str, float] | None:
        """One backward pass of the weighted sum (and the architecture's own penalty)."""
        total = self.combine(losses)
        penalty = model.regularization()
        if penalty is not None:
            total = total + penalty
        total.backward()
        self.after_backward()
        return self.weights() if self.per_step else None

    def after_backward(self) -> None:
        """Between the backward pass and the optimiser step."""

    def losses_after_step(self, losses: Mapping[str, torch.Tensor]) -> None:
        """With ``needs_losses_after_step``: the step's losses once the optimiser has stepped."""

    def step(self) -> None:
        """After the optimiser step: update the method's own parameters."""

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return iter(())

    def end_epoch(
        self, epoch: int, train_loss: Mapping[str, float], valid: Mapping[str, float]
    ) -> None:
        """Called after each epoch's validation with each trained task's mean training loss
        and primary validation metric; fixed weightings ignore it."""

    def epoch_metrics(self) -> dict[str, float]:
        """The method's own counters for the epoch just ended, by metric name (logged per
        epoch); none for most."""
        return {}


class Equal(LossWeighting):
    def __init__(self, tasks, sizes, weights) -> None:
        super().__init__(tasks, sizes, {t: 1.0 for t in tasks})


class Static(LossWeighting):
    pass


class InverseSize(LossWeighting):
    def __init__(self, tasks, sizes, weights) -> None:
        inverse = {t: 1.0 / max(1, sizes[t]) for t in tasks}
        mean = sum(inverse.values()) / len(inverse)
        super().__init__(tasks, sizes, {t: v / mean for t, v in inverse.items()})
