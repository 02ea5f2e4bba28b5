"""Inter-task affinity (Fifty et al., 2021, "Efficiently Identifying Task Groupings for
Multi-Task Learning"): how much a step on task i's loss helps task j.

``Z(i→j) = 1 − L_j(θ_s − lr·∇_{θ_s} L_i, θ_j) / L_j(θ_s, θ_j)``, on one batch of every task:
θ_s are the shared parameters, θ_j task j's head. Positive: a step for i lowers j's loss (i
helps j); negative: it raises it. The lookahead is a plain gradient step with the optimiser's
learning rate (the paper's SGD form), taken on a copy: training itself is untouched. The model
is measured in eval mode and batches come from a generator of their own, so a run with
affinities on trains exactly as one with them off.

``AffinityMeter`` measures every ``every`` steps and averages per epoch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.func import functional_call

from mtl_core import tasks as task_types
from mtl_core.meter import Meter
from mtl_core.models.sparse_input import input_batch


def lookahead_affinity(
    model: torch.nn.Module,
    batches: Mapping[str, tuple[object, torch.Tensor]],
    specs: Mapping[str, task_types.TaskSpec],
    lr: float,
) -> dict[str, dict[str, float]]:
    """``{i: {j: Z(i→j)}}`` for one batch ``(x, y)`` of every task."""
    shared_ids = {id(p) for p in model.shared_parameters()}
    params = dict(model.named_parameters())
    shared = {n: p for n, p in params.items() if id(p) in shared_ids}
    names = list(batches)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            before = {
                j: task_types.loss(specs[j], model(x, j), y).item() for j, (x, y) in batches.items()
            }
        out: dict[str, dict[str, float]] = {}
        for i in names:
            x, y = batches[i]
            loss_i = task_types.loss(specs[i], model(x, i), y)
            grads = torch.autograd.grad(loss_i, list(shared.values()))
            stepped = {
                n: p.detach() - lr * g for (n, p), g in zip(shared.items(), grads, strict=True)
            }
            with torch.no_grad():
                out[i] = {}
                for j in names:
                    xj, yj = batches[j]
                    after = task_types.loss(
                        specs[j], functional_call(model, stepped, (xj, j), strict=False), yj
                    ).item()
                    out[i][j] = 1.0 - after / before[j] if before[j] > 0 else 0.0
        return out
    finally:
        model.train(was_training)


class AffinityMeter(Meter):
    """Measures affinities every ``every`` optimiser steps; ``epoch_mean()`` averages them."""

    def __init__(self, tasks: Sequence, every: int, batch_size: int, lr: float, seed: int, device):
        self.tasks = {t.name: t for t in tasks}
        self.every, self.batch_size, self.lr, self.device = every, batch_size, lr, device
        self.rng = np.random.default_rng([seed, 0xAFF])  # its own draws: training is unchanged
        self._sums: dict[str, dict[str, float]] = {}
        self._count = 0

    def step(self, step_no: int, model: torch.nn.Module) -> None:
        if (step_no + 1) % self.every:
            return
        batches = {}
        for name, task in self.tasks.items():
            labelled = task.labelled_positions("train")  # partial labels: its own rows
            n = len(labelled)
            rows = labelled[self.rng.choice(n, size=min(self.batch_size, n), replace=False)]
            batches[name] = (
                input_batch(task.x["train"], rows).to(self.device),
                torch.from_numpy(task.y["train"][rows]).to(self.device),
            )
        specs = {n: t.spec for n, t in self.tasks.items()}
        found = lookahead_affinity(model, batches, specs, self.lr)
        for i, row in found.items():
            for j, z in row.items():
                self._sums.setdefault(i, {}).setdefault(j, 0.0)
                self._sums[i][j] += z
        self._count += 1

    def after_step(self, step_no: int, model: torch.nn.Module) -> None:
        self.step(step_no, model)

    def epoch_values(self) -> dict[str, object]:
        return {"affinity": self.epoch_mean()}

    def epoch_mean(self) -> dict[str, dict[str, float]] | None:
        """This epoch's mean ``{i: {j: Z(i→j)}}`` (None if no step was measured); resets."""
        if not self._count:
            return None
        out = {i: {j: v / self._count for j, v in row.items()} for i, row in self._sums.items()}
        self._sums, self._count = {}, 0
        return out
