"""From data frames to tasks ready to train: labels encoded, rows split, features fitted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mtl_core.data.features import FeatureSpace, TextFeatures, fit_feature_space
from mtl_core.data.labels import apply_label_map, encode_targets, label_classes
from mtl_core.data.readers import DataError
from mtl_core.data.splits import SPLITS, split_positions
from mtl_core.tasks import TaskSpec, TaskType, allowed_metrics


@dataclass
class TaskFrame:
    """One task as a user holds it: a data frame (or one per split) and what to read from it.

    Give either ``frame`` with ``valid``/``test`` fractions, or ``splits`` with a frame for
    each of ``train``, ``valid`` and ``test``.
    """

    inputs: str | Sequence[str]
    target: str | Sequence[str]
    type: str
    metric: str | None = None
    frame: pd.DataFrame | None = None
    splits: Mapping[str, pd.DataFrame] | None = None
    valid: float = 0.15
    test: float = 0.15
    label_map: Mapping[Any, Any] | None = None

    @property
    def input_columns(self) -> list[str]:
        return [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)

    @property
    def target_columns(self) -> list[str]:
        return [self.target] if isinstance(self.target, str) else list(self.target)


@dataclass
class TaskData:
    """A task ready to train: its spec, and features and targets per split."""

    spec: TaskSpec
    x: dict[str, sp.csr_matrix | np.ndarray] = field(repr=False)  # CSR, or dense arrays
    y: dict[str, np.ndarray] = field(repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_dim(self) -> int:
        return int(np.prod(self.x["train"].shape[1:]))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one row: ``(features,)``, or ``(H, W)``/``(H, W, C)`` for images."""
        return tuple(int(d) for d in self.x["train"].shape[1:])

    def rows(self, split: str) -> int:
        return int(self.x[split].shape[0])


def prepare_tasks(
    tasks: Mapping[str, TaskFrame],
    text: Mapping[str, TextFeatures] | None = None,
    seed: int = 0,
) -> tuple[dict[str, TaskData], FeatureSpace]:
    """Encode labels, split rows (seeded, stratified for classification) and fit one shared
    feature space on the training rows. Raises ``DataError`` naming the task and column."""
    split_frames: dict[str, dict[str, pd.DataFrame]] = {}
    specs: dict[str, TaskSpec] = {}
    shared: dict[tuple, dict[str, np.ndarray]] = {}  # one split per table read by several tasks
    for name, task in tasks.items():
        try:
            split_frames[name], specs[name] = _split_and_label(name, task, seed, shared)
        except DataError as exc:
            raise DataError(f"task {name!r}: {exc}") from exc
    space = fit_feature_space(
        {name: frames["train"] for name, frames in split_frames.items()},
        {name: task.input_columns for name, task in tasks.items()},
        text,
    )
    prepared = {}
    inputs_of: dict[tuple, dict] = {}  # tasks of one table with one input layout share x
    for name, task in tasks.items():
        frames = split_frames[name]
        group = (_table_key(task), space.layout(name))
        x = inputs_of.get(group) if group[0] is not None else None
        if x is None:
            x = {s: space.transform(name, frames[s]) for s in SPLITS}
            inputs_of[group] = x
        y = {s: _targets(specs[name], task, frames[s]) for s in SPLITS}
        prepared[name] = TaskData(specs[name], x, y)
    return prepared, space


def _table_key(task: TaskFrame) -> tuple | None:
    """Tasks that read the same data frame with the same fractions share their rows."""
    return None if task.frame is None else (id(task.frame), task.valid, task.test)


def _split_and_label(name: str, task: TaskFrame, seed: int, shared: dict):
    task_type = _task_type(task.type)
    metric = task.metric or allowed_metrics(task_type)[0]
    if metric not in allowed_metrics(task_type):
        raise DataError(
            f"metric {metric!r} does not fit a {task_type} task; use one of {allowed_metrics(task_type)}"
        )
    if (task.frame is None) == (task.splits is None):
        raise DataError("give either `frame` (with fractions) or `splits`, not both or neither")
    if task.frame is not None:
        frames = {"all": task.frame}
    else:
        missing = [s for s in SPLITS if s not in task.splits]
        if missing:
            raise DataError(f"`splits` lacks {', '.join(missing)}")
        frames = dict(task.splits)
    targets = task.target_columns
    if task_type != TaskType.multilabel and len(targets) != 1:
        raise DataError(f"a {task_type} task has one target column, got {len(targets)}")
    for part, frame in frames.items():
        where = "" if part == "all" else f" ({part} split)"
        for col in task.input_columns + targets:
            if col not in frame.columns:
                raise DataError(f"no column {col!r}{where}; columns are {list(frame.columns)}")
        if len(frame) == 0:
            raise DataError(f"no rows{where}")
        if task_type != TaskType.multilabel:
            frame = frame.copy()
            frame[targets[0]] = apply_label_map(frame[targets[0]], task.label_map)
            frames[part] = frame
    every_row = pd.concat(frames.values(), ignore_index=True)
    label_values = every_row[targets] if task_type == TaskType.multilabel else every_row[targets[0]]
    if task_type != TaskType.multilabel and label_values.isna().any():
        row = int(np.flatnonzero(label_values.isna().to_numpy())[0])
        raise DataError(f"column {targets[0]!r} has an empty label (row {row + 1})")
    classes = label_classes(task_type, label_values)
    if task.frame is not None:
        key = _table_key(task)
        if key not in shared:  # the first task of a table fixes its split (stratified on it)
            strat = None
            if task_type in (TaskType.binary, TaskType.multiclass):
                strat = frames["all"][targets[0]].astype(str)
            shared[key] = split_positions(len(frames["all"]), task.valid, task.test, seed, strat)
        frames = {
            s: frames["all"].iloc[rows].reset_index(drop=True) for s, rows in shared[key].items()
        }
    mean = std = None
    if task_type == TaskType.regression:
        train_y = encode_targets(task_type, frames["train"][targets[0]], classes)
        mean, std = float(train_y.mean()), float(train_y.std()) or 1.0
    spec = TaskSpec(name, task_type, metric, classes, mean or 0.0, std or 1.0)
    return frames, spec


def _targets(spec: TaskSpec, task: TaskFrame, frame: pd.DataFrame) -> np.ndarray:
    cols = task.target_columns
    values = frame[cols] if spec.type == TaskType.multilabel else frame[cols[0]]
    return encode_targets(spec.type, values, spec.classes)


def _task_type(value: str) -> TaskType:
    try:
        return TaskType(value)
    except ValueError:
        raise DataError(
            f"unknown task type {value!r}; use binary, multiclass, multilabel or regression"
        ) from None
