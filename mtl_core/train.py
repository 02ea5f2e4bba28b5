"""The training loop: seed, run the schedule, combine losses, validate each epoch, test once.

``fit(tasks, config, callbacks)`` trains one model on the given tasks and returns per-task
metrics. Callbacks receive each epoch's log; one that raises (a pruner, say) stops training and
its exception reaches the caller unchanged.

Which epoch's model is scored (``select``): ``best_epoch`` (default) keeps the model of the
epoch with the best validation score and reports its validation and test metrics;
``last_epoch`` the model as it ends. The validation score of an epoch is the model's Δm (%)
on validation against ``reference``: the single-task baselines' validation scores for a
multi-task model, as ``sweeps`` passes them; by default the model's own first epoch. For one
task that is its primary metric's relative change (sign-adjusted), so the best epoch is that
metric's best; for several, the model as a whole, never a different epoch per head.
``patience`` > 0 stops training once that score has not improved by more than ``min_delta``
percentage points for ``patience`` epochs: one unit for single-task and multi-task models
alike. The test split is evaluated once, on the scored model.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mtl_core import tasks as task_types
from mtl_core import transfer
from mtl_core.affinity import AffinityMeter
from mtl_core.config import OPTIMIZERS, SELECT, TrainConfig
from mtl_core.data.prepare import TaskData
from mtl_core.diagnostics import GradientMeter
from mtl_core.distill import soft_loss
from mtl_core.lr_schedule import schedulers
from mtl_core.meter import Meter
from mtl_core.methods import combination_problems
from mtl_core.models import build_model
from mtl_core.models.sparse_input import EVAL_BATCH, input_batch
from mtl_core.registry import GRADIENT_METHODS, Strategy
from mtl_core.schedules import schedule_steps, total_epochs
from mtl_core.weighting import build_weighting


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
    # the method's own counters this epoch, by metric name (nash_mtl/solver_failures)
    method: dict[str, float] = field(default_factory=dict)
    lr: float = float("nan")  # the learning rate the epoch trained at (training.lr_schedule)
    score: float = float("nan")  # the validation score that selects the epoch (module doc)


@dataclass
class FitResult:
    tasks: list[str]
    metric: dict[str, str]  # task -> primary metric
    history: list[EpochLog]
    valid: dict[str, dict[str, float]]  # the scored epoch's, every metric
    test: dict[str, dict[str, float]]  # the scored model's
    train_seconds: float
    device: str
    model: torch.nn.Module | None = field(default=None, repr=False)  # the scored model
    best_epoch: int = 0  # the epoch whose model was scored (1-based)
    stopped_early: bool = False  # early stopping ended training before its last epoch

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
    teachers: Mapping[str, np.ndarray] | None = None,
    reference: Mapping[str, float] | None = None,
) -> FitResult:
    """Train one model on ``tasks``. ``teachers``: per task, a teacher's logits for every
    training row (``mtl_core.distill.teacher_logits``), used when ``config.distill > 0``.
    ``reference``: per task, the validation score the epochs of a multi-task model are
    selected against (Δm; see the module's docstring)."""
    task_list = list(tasks.values()) if isinstance(tasks, Mapping) else list(tasks)
    if not task_list:
        raise ValueError("fit needs at least one task")
    by_name = {t.name: t for t in task_list}
    names = list(by_name)
    problems = combination_problems(
        names,
        architecture=config.architecture,
        schedule=config.schedule,
        weighting=config.weighting,
        gradients=config.gradients,
        optimizer_per_task=config.optimizer_per_task,
        weights=config.weights,
    )
    if problems:
        raise ValueError("; ".join(problems))
    if config.select not in SELECT:
        raise ValueError(f"select {config.select!r}: use one of {', '.join(SELECT)}")
    if config.patience < 0 or not math.isfinite(config.min_delta) or config.min_delta < 0:
        raise ValueError("early stopping needs patience >= 0 and a finite min_delta >= 0")
    if config.distill > 0:
        missing = [t for t in names if t not in (teachers or {})]
        if missing:
            raise ValueError(f"distillation needs a teacher for every task; none for {missing}")
        for t in task_list:
            if len(teachers[t.name]) != t.rows("train"):  # type: ignore[index]
                raise ValueError(
                    f"task {t.name!r}: the teacher has logits for {len(teachers[t.name])} rows, "  # type: ignore[index]
                    f"the task {t.rows('train')} training rows"
                )
    shapes = {t.input_shape for t in task_list}
    if len(shapes) > 1:
        raise ValueError(f"tasks trained together need rows of one shape, got {sorted(shapes)}")
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    settings = config.method_settings()  # the registry's hyperparameters, by study name
    model = build_model(
        config.architecture,
        task_list[0].input_shape,
        [t.spec for t in task_list],
        config.hidden_size,
        config.depth,
        config.activation,
        config.dropout,
        trunk=config.trunk,
        trunk_options=config.trunk_options,
        head_layers=config.head_layers,
        head_hidden=config.head_hidden,
        **settings,
    ).to(device)
    optimizers = _optimizers(config, model, names, device)
    class_w = class_weights(config, task_list, device)
    groups = {t.name: id(t.x["train"]) for t in task_list}  # same x object: same rows
    rows_of = _label_rows(task_list, groups, config.schedule)
    sizes = {t.name: t.labelled_rows("train") for t in task_list}  # what weightings count
    drawn = {  # the rows the schedule draws from: all of a shared table's, or labelled ones
        t.name: len(rows_of.positions[t.name]) if t.name in rows_of.positions else t.rows("train")
        for t in task_list
    }
    strategy = _strategy(config, names, sizes, settings)
    strategy.bind(model, config.lr)
    soft = {
        t: torch.from_numpy(np.asarray(teachers[t], dtype=np.float32))
        for t in names
        if config.distill > 0 and teachers is not None
    }
    meters = _meters(config, task_list, device)
    for cb in callbacks:
        cb.on_train_start(names, config)

    epochs = total_epochs(config.schedule, config.epochs, len(names))
    lr_steps = schedulers(config, optimizers, epochs)
    metric_of = {t.name: t.spec.metric for t in task_list}
    selector = EpochSelector(metric_of, reference, config.patience, config.min_delta)
    # sequential training meets a new task at each phase: stopping counts from the last one
    patient_from = epochs - config.epochs + 1 if config.schedule == "sequential" else 1
    started = time.perf_counter()
    history: list[EpochLog] = []
    best_state: dict[str, torch.Tensor] | None = None
    stopped_early = False
    for epoch in range(1, epochs + 1):
        model.train()
        loss_sum = {t: torch.zeros((), device=device) for t in names}
        loss_rows = dict.fromkeys(names, 0)
        weight_sum: dict[str, float] = {}
        weight_steps = 0
        steps = schedule_steps(
            config.schedule,
            drawn,
            config.batch_size,
            rng,
            epoch=epoch,
            epochs=config.epochs,
            groups=groups,
            **settings,
        )
        for step_no, step in enumerate(steps):
            losses, features, counts = _forward(
                model, step, by_name, device, soft, config, rows_of, class_w
            )
            _check_finite(losses, epoch, step_no)
            model.zero_grad(set_to_none=True)
            used = strategy.backward(model, losses, features)  # fills .grad; this step's weights
            for meter in meters:
                meter.after_backward(step_no, model)
            if config.grad_clip > 0:  # the total norm of every gradient, after the method's
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            for name in optimizers if len(optimizers) == 1 else {t for t, _ in step}:
                optimizers[name].step()
            if strategy.needs_losses_after_step:  # FAMO: how much this step lowered each loss
                with torch.no_grad():
                    again = _forward(model, step, by_name, device, soft, config, rows_of, class_w)
                strategy.losses_after_step(again[0])
            strategy.step()
            for meter in meters:
                meter.after_step(step_no, model)
            if used:
                for t, w in used.items():
                    weight_sum[t] = weight_sum.get(t, 0.0) + w
                weight_steps += 1
            for name, _ in step:
                loss_sum[name] += losses[name].detach() * counts[name]
                loss_rows[name] += counts[name]
        lr = next(iter(optimizers.values())).param_groups[0]["lr"]  # this epoch's
        for scheduler in lr_steps:
            scheduler.step()
        valid = evaluate(model, task_list, "valid", device)
        train_loss = {t: float(loss_sum[t]) / loss_rows[t] for t in names if loss_rows[t]}
        if weight_steps:
            weights_used = {t: v / weight_steps for t, v in weight_sum.items()}
        else:
            weights_used = strategy.weights()
        strategy.end_epoch(epoch, train_loss, {t: valid[t][metric_of[t]] for t in names})
        measured = {k: v for meter in meters for k, v in meter.epoch_values().items()}
        score = selector.score(valid)
        log = EpochLog(
            epoch,
            epochs,
            train_loss,
            valid,
            weights_used,
            score=score,
            lr=lr,
            method=strategy.epoch_metrics(),
            **measured,
        )
        history.append(log)
        if selector.update(epoch, score) and config.select == "best_epoch" and epoch < epochs:
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        for cb in callbacks:
            cb.on_epoch_end(log)
        if config.patience and epoch >= patient_from and selector.stale(epoch, patient_from):
            stopped_early = epoch < epochs
            break
    seconds = time.perf_counter() - started
    best = selector.best_epoch if config.select == "best_epoch" else len(history)
    best = best or len(history)  # no epoch with a finite validation score: the last one
    if best != len(history) and best_state is not None:
        model.load_state_dict(best_state)
    test = evaluate(model, task_list, "test", device)
    valid = history[best - 1].valid
    return FitResult(
        names,
        metric_of,
        history,
        valid,
        test,
        seconds,
        str(device),
        model,
        best,
        stopped_early,
    )


class EpochSelector:
    """Scores each epoch on validation and remembers the best (see the module's docstring)."""

    def __init__(
        self,
        metric_of: Mapping[str, str],
        reference: Mapping[str, float] | None,
        patience: int = 0,
        min_delta: float = 0.0,
    ) -> None:
        self.metric_of, self.reference = dict(metric_of), reference
        self.patience, self.min_delta = patience, min_delta
        self.best_epoch, self.best_score = 0, -math.inf
        self._improved_at, self._counted = 0, -math.inf  # early stopping's (Keras) reference

    def score(self, valid: Mapping[str, Mapping[str, float]]) -> float:
        primary = {t: float(valid[t][m]) for t, m in self.metric_of.items()}
        if self.reference is None:
            self.reference = primary  # the first epoch's scores
        return transfer.delta_m(
            transfer.deltas(primary, {t: self.reference[t] for t in primary}, self.metric_of)
        )

    def update(self, epoch: int, score: float) -> bool:
        """True when ``epoch`` is the new best. Ties keep the earlier epoch; early stopping
        counts an improvement only above ``min_delta``."""
        if not math.isfinite(score):
            return False
        if score > self._counted + self.min_delta:
            self._improved_at, self._counted = epoch, score
        if score > self.best_score:
            self.best_epoch, self.best_score = epoch, score
            return True
        return False

    def stale(self, epoch: int, start: int = 1) -> bool:
        """Whether ``patience`` epochs (counted from ``start``) passed without an improvement."""
        return epoch - max(self._improved_at, start - 1) >= self.patience


def _strategy(config: TrainConfig, names: Sequence[str], sizes: Mapping[str, int], settings):
    """The loss weighting or gradient method, behind the one interface the loop calls
    (``bind``, ``backward``, ``step``, ``end_epoch``, ``weights``: see ``LossWeighting``)."""
    if config.weighting in GRADIENT_METHODS:
        entry = GRADIENT_METHODS.entry(config.weighting)
        assert isinstance(entry, Strategy)
        return entry.load_strategy()(config.weighting, names, config.gradients, **settings)
    return build_weighting(
        config.weighting, names, sizes, config.weights, seed=config.seed, **settings
    )


def _meters(config: TrainConfig, task_list: Sequence[TaskData], device) -> list[Meter]:
    """The measurements asked for (affinity, gradient diagnostics); none by default."""
    meters: list[Meter] = []
    if config.diagnostics_every > 0:
        every, batch = config.diagnostics_every, config.batch_size
        meters.append(GradientMeter(task_list, every, batch, config.seed, device))
    if config.affinity_every > 0 and len(task_list) > 1:
        every, batch = config.affinity_every, config.batch_size
        meters.append(AffinityMeter(task_list, every, batch, config.lr, config.seed, device))
    return meters


@dataclass
class _LabelRows:
    """Where a partially labelled task's training rows come from: ``positions`` (the
    schedule draws from its labelled rows only) or ``masks`` (it shares the batches of a
    table's other tasks under ``joint``, and its loss is masked to its labelled rows)."""

    positions: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]


def _label_rows(task_list: Sequence[TaskData], groups: Mapping[str, int], schedule: str):
    shared = Counter(groups.values())
    positions, masks = {}, {}
    for t in task_list:
        if t.labelled is None:
            continue
        if schedule == "joint" and shared[groups[t.name]] > 1:
            mask = np.zeros(t.rows("train"), dtype=bool)
            mask[t.labelled["train"]] = True
            masks[t.name] = mask
        else:
            positions[t.name] = t.labelled["train"]
    return _LabelRows(positions, masks)


def class_weights(config, tasks: Sequence[TaskData], device) -> dict[str, torch.Tensor]:
    """``class_weights: balanced``: per classification task, scikit-learn's balanced weights
    ``n / (k n_c)`` from its labelled training rows (per label for multilabel tasks: the
    positives weigh ``n_neg / n_pos``); nothing for regression or ``none``."""
    if config.class_weights == "none":
        return {}
    # here, not at the top: scikit-learn loads only when weights are asked for
    from sklearn.utils.class_weight import compute_class_weight

    out = {}
    for task in tasks:
        y = np.asarray(task.y["train"])
        if task.labelled is not None:
            y = y[task.labelled["train"]]
        if task.spec.type == task_types.TaskType.multilabel:
            positives = y.sum(axis=0)
            out[task.name] = torch.tensor(
                (len(y) - positives) / np.maximum(positives, 1), dtype=torch.float32
            ).to(device)
        elif task.spec.type != task_types.TaskType.regression:
            k = 2 if task.spec.type == task_types.TaskType.binary else len(task.spec.classes)
            classes = np.arange(k)
            present = np.isin(classes, y)
            weights = np.ones(k)
            weights[present] = compute_class_weight(
                "balanced", classes=classes[present], y=y.astype(int)
            )
            out[task.name] = torch.tensor(weights, dtype=torch.float32).to(device)
    return out


def _forward(model, step, by_name, device, soft, config, rows_of: _LabelRows, class_w=None):
    """Each task's loss for one step, the shared representation it came from, and how many
    labelled rows it was averaged over. Tasks that share rows (same inputs, same batch) share
    one forward pass through the trunk; a task's loss is the mean over its labelled rows."""
    losses: dict[str, torch.Tensor] = {}
    features: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    cache: dict[tuple, tuple[object, torch.Tensor | None]] = {}
    split_heads = getattr(model, "has_shared_representation", True)
    for name, drawn in step:
        task = by_name[name]
        own = rows_of.positions.get(name)
        rows = drawn if own is None else own[drawn]
        key = (id(task.x["train"]), id(drawn), name if own is not None else None)
        if key not in cache:
            x = input_batch(task.x["train"], rows).to(device)
            cache[key] = (x, model.shared(x) if split_heads else None)
        x, z = cache[key]
        logits = model.head(name, z, x) if z is not None else model(x, name)
        y = torch.from_numpy(task.y["train"][rows]).to(device)
        teacher = soft[name][rows].to(device).reshape(logits.shape) if name in soft else None
        counts[name] = len(rows)
        mask = rows_of.masks.get(name)
        if mask is not None:
            keep = mask[rows]
            counts[name] = int(keep.sum())
            if not counts[name]:  # no labelled row of this task in the batch
                losses[name] = logits.sum() * 0.0
                if z is not None:
                    features[name] = z
                continue
            chosen = torch.from_numpy(keep).to(device)
            logits, y = logits[chosen], y[chosen]
            teacher = teacher[chosen] if teacher is not None else None
        loss = task_types.loss(task.spec, logits, y, (class_w or {}).get(name))
        if teacher is not None:
            loss = (1 - config.distill) * loss + config.distill * soft_loss(
                task.spec, logits, teacher, config.distill_temperature
            )
        losses[name] = loss
        if z is not None:
            features[name] = z
    return losses, features, counts


def _check_finite(losses: Mapping[str, torch.Tensor], epoch: int, step_no: int) -> None:
    if not bool(torch.isfinite(torch.stack(list(losses.values()))).all()):
        bad = ", ".join(f"{t}={v.item():.4g}" for t, v in losses.items())
        raise TrainingDiverged(
            f"loss became non-finite at epoch {epoch}, step {step_no + 1} ({bad})"
        )


def evaluate(model: torch.nn.Module, tasks: Sequence[TaskData], split: str, device: torch.device):
    """Every metric of every task on one split (batched, no gradients)."""
    model.eval()
    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        for task in tasks:
            matrix, y = task.x[split], task.y[split]
            if task.labelled is not None:  # metrics of a partially labelled task: its rows
                rows = task.labelled[split]
                matrix, y = matrix[rows], y[rows]
            n = int(matrix.shape[0])
            logits = [
                model(input_batch(matrix[i : min(n, i + EVAL_BATCH)]).to(device), task.name)
                for i in range(0, n, EVAL_BATCH)
            ]
            scores = task_types.predict(task.spec, torch.cat(logits))
            if not np.all(np.isfinite(scores)):
                raise TrainingDiverged(f"task {task.name!r}: predictions on {split} are not finite")
            out[task.name] = task_types.score(task.spec, y, scores)
    return out


def _optimizers(
    config: TrainConfig, model: torch.nn.Module, names: Sequence[str], device: torch.device
) -> dict[str, torch.optim.Optimizer]:
    """One optimiser over every parameter (key ``""``), or with ``optimizer_per_task`` one per
    task over the shared parameters and the task's own, each with its own moments."""
    if not config.optimizer_per_task:
        return {"": _optimizer(config, list(model.parameters()), device)}
    shared = list(model.shared_parameters())
    return {t: _optimizer(config, shared + list(model.task_parameters(t)), device) for t in names}


def _optimizer(
    config: TrainConfig, params: list[torch.nn.Parameter], device: torch.device
) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {config.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    fused = device.type in ("cpu", "cuda")  # fused Adam: about 45% more steps per second on CPU
    return cls(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
