"""Measurements taken alongside training that never change it (their own batches and random
draws, eval mode, copies): the training loop calls every meter at the same points, and a
meter does nothing at the points it does not need."""

from __future__ import annotations

from typing import Any


class Meter:
    def after_backward(self, step_no: int, model: Any) -> None:
        """Between the backward pass and the optimiser step (the step's own gradients)."""

    def after_step(self, step_no: int, model: Any) -> None:
        """After the optimiser step."""

    def epoch_values(self) -> dict[str, Any]:
        """This epoch's results as ``EpochLog`` fields; resets for the next epoch."""
        return {}
