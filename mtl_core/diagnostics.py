"""Diagnostics that explain a multi-task result (all optional; none changes training).

- ``GradientMeter``: every N steps, on one batch of every task drawn by a generator of its own,
  the cosine similarity between the tasks' gradients on the shared parameters (negative:
  gradient conflict), and during the real steps the gradient norm of every layer; both averaged
  per epoch.
- ``feature_importance``: each input feature's summed absolute weight into the first shared
  layer; ``top_features`` names the largest.
- ``cross_task_scores``: task A's rows through task B's head (the classic Yelp-to-IMDB
  comparison), scored with B's metrics against A's labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from mtl_core import tasks as task_types
from mtl_core.meter import Meter
from mtl_core.models.sparse_input import SparseLinear, input_batch


class GradientMeter(Meter):
    def __init__(self, tasks: Sequence, every: int, batch_size: int, seed: int, device) -> None:
        self.tasks = {t.name: t for t in tasks}
        self.every, self.batch_size, self.device = every, batch_size, device
        self.rng = np.random.default_rng([seed, 0xD1A6])
        self._cos: dict[str, dict[str, float]] = {}
        self._cos_count = 0
        self._norms: dict[str, float] = {}
        self._norm_count = 0

    def after_backward(self, step_no: int, model: torch.nn.Module) -> None:
        """Call between ``backward`` and the optimiser step of a real training step."""
        if (step_no + 1) % self.every:
            return
        for name, p in model.named_parameters():
            if p.grad is not None:
                self._norms[name] = self._norms.get(name, 0.0) + float(p.grad.norm())
        self._norm_count += 1

    def after_step(self, step_no: int, model: torch.nn.Module) -> None:
        if (step_no + 1) % self.every or len(self.tasks) < 2:
            return
        shared = list(model.shared_parameters())
        was_training = model.training
        model.eval()
        try:
            flat = {}
            for name, task in self.tasks.items():
                labelled = task.labelled_positions("train")  # partial labels: its own rows
                n = len(labelled)
                rows = labelled[self.rng.choice(n, size=min(self.batch_size, n), replace=False)]
                x = input_batch(task.x["train"], rows).to(self.device)
                y = torch.from_numpy(task.y["train"][rows]).to(self.device)
                loss = task_types.loss(task.spec, model(x, name), y)
                grads = torch.autograd.grad(loss, shared, allow_unused=True)
                flat[name] = torch.cat(
                    [
                        (g if g is not None else torch.zeros_like(p)).reshape(-1)
                        for g, p in zip(grads, shared, strict=True)
                    ]
                )
        finally:
            model.train(was_training)
        for i in flat:
            for j in flat:
                if i < j:
                    cos = float(torch.nn.functional.cosine_similarity(flat[i], flat[j], dim=0))
                    self._cos.setdefault(i, {})[j] = self._cos.get(i, {}).get(j, 0.0) + cos
        self._cos_count += 1

    def epoch_values(self) -> dict[str, object]:
        norms, cosines = self.epoch_means()
        return {"grad_norm": norms, "grad_cos": cosines}

    def epoch_means(self) -> tuple[dict[str, float] | None, dict[str, dict[str, float]] | None]:
        """(layer -> mean gradient norm, i -> j -> mean cosine, i < j) of this epoch; resets."""
        norms = (
            {k: v / self._norm_count for k, v in self._norms.items()} if self._norm_count else None
        )
        cos = (
            {i: {j: v / self._cos_count for j, v in row.items()} for i, row in self._cos.items()}
            if self._cos_count
            else None
        )
        self._norms, self._norm_count, self._cos, self._cos_count = {}, 0, {}, 0
        return norms, cos


def feature_importance(model: torch.nn.Module) -> np.ndarray:
    """Summed absolute weight of each input feature into the first shared layer."""
    first = next(m for m in model.modules() if isinstance(m, SparseLinear | torch.nn.Linear))
    weight = first.weight if isinstance(first, SparseLinear) else first.weight.T
    return weight.detach().abs().sum(dim=1).cpu().numpy()


def top_features(importance: np.ndarray, names: Sequence[str], k: int = 20) -> list[str]:
    order = np.argsort(-importance, kind="stable")[:k]
    return [names[i] for i in order]


def compatible(a: task_types.TaskSpec, b: task_types.TaskSpec) -> bool:
    """B's head can score A's rows: same type and the same classes (or both regression)."""
    return a.type == b.type and a.classes == b.classes


def cross_task_scores(
    model: torch.nn.Module, head: str, head_spec: task_types.TaskSpec, data, split: str, device
) -> Mapping[str, float]:
    """``data``'s rows on ``split`` through ``head``'s head, scored against ``data``'s labels."""
    model.eval()
    rows = data.labelled_positions(split)
    with torch.no_grad():
        logits = model(input_batch(data.x[split], rows).to(device), head)
    return task_types.score(head_spec, data.y[split][rows], task_types.predict(head_spec, logits))
