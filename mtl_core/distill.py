"""Knowledge distillation (Hinton et al. 2015; Clark et al. 2019 for multi-task students):
the multi-task student learns each task from its labels and from its single-task teacher.

A task's loss becomes ``(1 - a) * hard + a * soft``, ``a`` = ``training.distill``. ``soft``
compares the student's and the teacher's outputs softened by the temperature ``T``
(``training.distill_temperature``), scaled by ``T^2`` so that its gradients keep their size:
KL divergence of softmaxes for multiclass, binary cross-entropy against the teacher's sigmoid
for binary and multilabel, and the squared distance to the teacher's (standardised) output
for regression, where no temperature applies. Teachers are given as their logits on the
training rows (``teacher_logits``), so a student needs no teacher model in memory.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mtl_core.models.sparse_input import EVAL_BATCH, input_batch
from mtl_core.tasks import TaskSpec, TaskType


def soft_loss(
    spec: TaskSpec, student: torch.Tensor, teacher: torch.Tensor, temperature: float
) -> torch.Tensor:
    t = float(temperature)
    if spec.type == TaskType.regression:
        return F.mse_loss(student, teacher)
    if spec.type == TaskType.multiclass:
        return (
            F.kl_div(
                F.log_softmax(student / t, dim=-1),
                F.log_softmax(teacher / t, dim=-1),
                log_target=True,
                reduction="batchmean",
            )
            * t
            * t
        )
    return F.binary_cross_entropy_with_logits(student / t, torch.sigmoid(teacher / t)) * t * t


def teacher_logits(model: torch.nn.Module, task, device: torch.device | str = "cpu") -> np.ndarray:
    """A trained model's logits for every training row of ``task`` (a ``TaskData``)."""
    model.eval()
    matrix, n = task.x["train"], task.rows("train")
    with torch.no_grad():
        parts = [
            model(input_batch(matrix[i : min(n, i + EVAL_BATCH)]).to(device), task.name).cpu()
            for i in range(0, n, EVAL_BATCH)
        ]
    return torch.cat(parts).numpy().astype(np.float32)
