"""The training loop: seed, run the schedule, combine losses, validate each epoch, test once.

``fit(tasks, config, callbacks)`` trains one model on the given tasks and returns per-task
metrics. Callbacks receive each epoch's log; one that raises (a pruner, say) stops training and
its exception reaches the caller unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mtl_core import tasks as task_types
from mtl_core.data.prepare import TaskData
from mtl_core.models import build_model
from mtl_core.models.sparse_input import sparse_batch
from mtl_core.schedules import schedule_steps
from mtl_core.weighting import build_weighting

OPTIMIZERS = ("adam", "adamw", "sgd")
EVAL_BATCH = 2048


@dataclass
class TrainConfig:
    """Everything that fixes one training run (plain values; no Optuna or YAML inside)."""

    architecture: str = "hard_sharing"
    hidden_size: int = 200
    depth: int = 1
    activation: str = "sigmoid"
    dropout: float = 0.0
    epochs: int = 6
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 0.001
    weight_decay: float = 0.0
    schedule: str = "round_robin"
    weighting: str = "equal"
    weights: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    affinity_every: int = 0  # measure inter-task affinity every N steps (0: off); see affinity.py
    diagnostics_every: int = 0  # gradient norms and task-gradient cosines every N steps (0: off)


@dataclass
class EpochLog:
    epoch: int  # 1-based
    epochs: int
    train_loss: dict[str, float]
    valid: dict[str, dict[str, float]]
    weights: dict[str, float]
    affinity: dict[str, dict[str, float]] | None = None  # i -> j -> mean Z(i→j) this epoch
    grad_norm: dict[str, float] | None = None  # parameter name -> mean gradient norm
    grad_cos: dict[str, dict[str, float]] | None = None  # i -> j (i < j) -> mean cosine


@dataclass
class FitResult:
    tasks: list[str]
    metric: dict[str, str]  # task -> primary metric
    history: list[EpochLog]
    valid: dict[str, dict[str, float]]  # final epoch, every metric
    test: dict[str, dict[str, float]]
    train_seconds: float
    device: str
    model: torch.nn.Module | None = field(default=None, repr=False)

    def primary(self, split: str = "test") -> dict[str, float]:
        scores = self.test if split == "test" else self.valid
        return {t: scores[t][self.metric[t]] for t in self.tasks}


class Callback:
    """Hooks into the loop; override what you need."""

    def on_train_start(self, tasks: Sequence[str], config: TrainConfig) -> None: ...

    def on_epoch_end(self, log: EpochLog) -> None: ...


class TrainingDiverged(RuntimeError):
    """A task's loss became NaN or infinite; the message says which task, epoch and step."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            "device 'cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'"
        )
    return torch.device(name)


def fit(
    tasks: Sequence[TaskData] | Mapping[str, TaskData],
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
) -> FitResult:
    task_list = list(tasks.values()) if isinstance(tasks, Mapping) else list(tasks)
    if not task_list:
        raise ValueError("fit needs at least one task")
    by_name = {t.name: t for t in task_list}
    names = list(by_name)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = build_model(
        config.architecture,
        task_list[0].input_dim,
        [t.spec for t in task_list],
        config.hidden_size,
        config.depth,
        config.activation,
        config.dropout,
    ).to(device)
    optimizer = _optimizer(config, model, device)
    sizes = {t.name: t.rows("train") for t in task_list}
    weighting = build_weighting(config.weighting, names, sizes, config.weights)
    meter = None
    if config.affinity_every > 0 and len(task_list) > 1:
        from mtl_core.affinity import AffinityMeter

        meter = AffinityMeter(
            task_list, config.affinity_every, config.batch_size, config.lr, config.seed, device
        )
    gauge = None
    if config.diagnostics_every > 0:
        from mtl_core.diagnostics import GradientMeter

        gauge = GradientMeter(
            task_list, config.diagnostics_every, config.batch_size, config.seed, device
        )
    for cb in callbacks:
        cb.on_train_start(names, config)

    started = time.perf_counter()
    history: list[EpochLog] = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        loss_sum = dict.fromkeys(names, 0.0)
        loss_rows = dict.fromkeys(names, 0)
        weights_used = weighting.weights()
        for step_no, step in enumerate(
            schedule_steps(config.schedule, sizes, config.batch_size, rng)
        ):
            losses = {}
            for name, rows in step:
                task = by_name[name]
                x = sparse_batch(task.x["train"], rows).to(device)
                y = torch.from_numpy(task.y["train"][rows]).to(device)
                losses[name] = task_types.loss(task.spec, model(x, name), y)
            total = weighting.combine(losses)
            if not torch.isfinite(total):
                bad = ", ".join(f"{t}={v.item():.4g}" for t, v in losses.items())
                raise TrainingDiverged(
                    f"loss became non-finite at epoch {epoch}, step {step_no + 1} ({bad})"
                )
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if gauge is not None:
                gauge.after_backward(step_no, model)
            optimizer.step()
            if gauge is not None:
                gauge.after_step(step_no, model)
            for name, rows in step:
                loss_sum[name] += losses[name].item() * len(rows)
                loss_rows[name] += len(rows)
            if meter is not None:
                meter.step(step_no, model)
        valid = evaluate(model, task_list, "valid", device)
        train_loss = {t: loss_sum[t] / max(1, loss_rows[t]) for t in names}
        weighting.end_epoch(epoch, train_loss, {t: valid[t][by_name[t].spec.metric] for t in names})
        affinity = meter.epoch_mean() if meter is not None else None
        norms, cosines = gauge.epoch_means() if gauge is not None else (None, None)
        log = EpochLog(
            epoch, config.epochs, train_loss, valid, weights_used, affinity, norms, cosines
        )
        history.append(log)
        for cb in callbacks:
            cb.on_epoch_end(log)
    seconds = time.perf_counter() - started
    test = evaluate(model, task_list, "test", device)
    valid = history[-1].valid if history else evaluate(model, task_list, "valid", device)
    return FitResult(
        names,
        {t.name: t.spec.metric for t in task_list},
        history,
        valid,
        test,
        seconds,
        str(device),
        model,
    )


def evaluate(model: torch.nn.Module, tasks: Sequence[TaskData], split: str, device: torch.device):
    """Every metric of every task on one split (batched, no gradients)."""
    model.eval()
    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        for task in tasks:
            matrix, n = task.x[split], task.rows(split)
            logits = [
                model(sparse_batch(matrix[i : min(n, i + EVAL_BATCH)]).to(device), task.name)
                for i in range(0, n, EVAL_BATCH)
            ]
            scores = task_types.predict(task.spec, torch.cat(logits))
            if not np.all(np.isfinite(scores)):
                raise TrainingDiverged(f"task {task.name!r}: predictions on {split} are not finite")
            out[task.name] = task_types.score(task.spec, task.y[split], scores)
    return out


def _optimizer(
    config: TrainConfig, model: torch.nn.Module, device: torch.device
) -> torch.optim.Optimizer:
    params = list(model.parameters())
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {config.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    fused = device.type in ("cpu", "cuda")  # fused Adam: about 45% more steps per second on CPU
    return cls(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
