"""From data frames to tasks ready to train: labels encoded, rows split, features fitted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mtl_core.data.features import (
    FeatureSpace,
    TextFeatures,
    check_column,
    column_kind,
    fit_feature_space,
)
from mtl_core.data.labels import apply_label_map, encode_targets, label_classes, label_key
from mtl_core.data.readers import DataError
from mtl_core.data.splits import SPLITS, check_split_size, split_positions
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
    """Check every input and target column, encode labels, split rows (seeded, stratified
    for classification) and fit one shared feature space on the training rows. Raises
    ``DataError`` naming the task, the column and, where one is at fault, the row."""
    split_frames: dict[str, dict[str, pd.DataFrame]] = {}
    specs: dict[str, TaskSpec] = {}
    shared: dict[tuple, dict[str, pd.DataFrame]] = {}  # one split per table read by several tasks
    kinds: dict[str, str] = {c: t.kind for c, t in (text or {}).items()}
    for name, task in tasks.items():
        try:
            split_frames[name], specs[name] = _split_and_label(name, task, seed, shared, kinds)
        except DataError as exc:
            raise DataError(f"task {name!r}: {exc}") from exc
    try:
        space = fit_feature_space(
            {name: frames["train"] for name, frames in split_frames.items()},
            {name: task.input_columns for name, task in tasks.items()},
            text,
            kinds,
        )
    except DataError as exc:
        owner = next(
            (n for n, t in tasks.items() if _names_column(str(exc), t.input_columns)), None
        )
        raise (DataError(f"task {owner!r}: {exc}") if owner else exc) from exc
    prepared = {}
    inputs_of: dict[tuple, dict] = {}  # tasks of one table with one input layout share x
    for name, task in tasks.items():
        frames = split_frames[name]
        group = (_table_key(task), space.layout(name))
        x = inputs_of.get(group)
        if x is None:
            x = {s: space.transform(name, frames[s]) for s in SPLITS}
            inputs_of[group] = x
        y = {s: _targets(specs[name], task, frames[s]) for s in SPLITS}
        prepared[name] = TaskData(specs[name], x, y)
    return prepared, space


def _names_column(message: str, columns: Sequence[str]) -> bool:
    return any(f"column {c!r}" in message for c in columns)


def _table_key(task: TaskFrame) -> tuple:
    """Tasks that read the same data frames with the same fractions share their rows."""
    if task.frame is not None:
        return (id(task.frame), task.valid, task.test)
    return (tuple((s, id(f)) for s, f in sorted(task.splits.items())), task.valid)


def _split_and_label(name: str, task: TaskFrame, seed: int, shared: dict, kinds: dict):
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
        if missing == ["valid"] and task.valid > 0:
            missing = []  # carved from the training file below
        if missing:
            raise DataError(f"`splits` lacks {', '.join(missing)}")
        frames = dict(task.splits)
    targets = task.target_columns
    if task_type != TaskType.multilabel and len(targets) != 1:
        raise DataError(f"a {task_type} task has one target column, got {len(targets)}")
    labels: dict[str, pd.Series | pd.DataFrame] = {}
    for part, frame in frames.items():
        where = "" if part == "all" else f" ({part} split)"
        for col in task.input_columns + targets:
            if col not in frame.columns:
                raise DataError(f"no column {col!r}{where}; columns are {list(frame.columns)}")
        if len(frame) == 0:
            raise DataError(f"no rows{where}")
        for col in task.input_columns:
            if col not in kinds:
                kinds[col] = column_kind(frame[col])
            try:
                check_column(frame[col], col, kinds[col])
            except DataError as exc:
                raise DataError(f"{exc}{where}") from None
        labels[part] = _labels(task_type, task, frame, where)
    every = pd.concat(labels.values(), ignore_index=True)
    try:
        classes = label_classes(task_type, every)
    except DataError as exc:
        raise DataError(f"column {targets[0]!r}: {exc}") from None
    if task.frame is not None:
        check_split_size(len(task.frame), task.valid, task.test)
    classify = task_type in (TaskType.binary, TaskType.multiclass)
    if classify:
        _check_class_rows(labels, targets[0], task)
    key = _table_key(task)
    if key not in shared:  # the first task of a table fixes its split (stratified on it)
        if task.frame is not None:
            strat = labels["all"].astype(str) if classify else None
            rows = split_positions(len(frames["all"]), task.valid, task.test, seed, strat)
            shared[key] = _cut_rows(frames["all"], rows)
        elif "valid" not in frames:  # a fraction of the training file becomes validation rows
            strat = labels["train"].astype(str) if classify else None
            try:
                rows = split_positions(len(frames["train"]), task.valid, 0.0, seed, strat)
            except DataError as exc:
                raise DataError(f"{exc} (train split)") from None
            shared[key] = {**_cut_rows(frames["train"], rows), "test": frames["test"]}
        else:
            shared[key] = frames
    frames = shared[key]
    mean = std = None
    if task_type == TaskType.regression:
        raw = apply_label_map(frames["train"][targets[0]], task.label_map)
        train_y = encode_targets(task_type, raw, classes)
        mean, std = float(train_y.mean()), float(train_y.std()) or 1.0
    spec = TaskSpec(name, task_type, metric, classes, mean or 0.0, std or 1.0)
    return frames, spec


def _cut_rows(frame: pd.DataFrame, rows: Mapping[str, np.ndarray]) -> dict[str, pd.DataFrame]:
    return {
        s: frame.iloc[positions].reset_index(drop=True)
        for s, positions in rows.items()
        if s != "test" or len(positions)
    }


def _labels(task_type: TaskType, task: TaskFrame, frame: pd.DataFrame, where: str):
    """A split's raw labels, after ``label_map``, checked row by row."""
    targets = task.target_columns
    if task_type == TaskType.multilabel:
        values = frame[targets]
        for col in targets:
            numbers = pd.to_numeric(values[col], errors="coerce")
            bad = ~numbers.isin((0, 1))
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(
                    f"column {col!r}, row {row + 1}{where}: {values[col].iloc[row]!r}; "
                    "multilabel target columns hold 0 or 1"
                )
        return values
    col = targets[0]
    values = frame[col]
    empty = values.isna() | (values.astype(str).str.strip() == "")
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0])
        raise DataError(
            f"column {col!r} has an empty label (row {row + 1}{where}; "
            f"{int(empty.sum())} empty in all)"
        )
    try:
        values = apply_label_map(values, task.label_map)
    except DataError as exc:
        raise DataError(f"column {col!r}{where}: {exc}") from None
    if task_type == TaskType.regression:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(numbers)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"column {col!r}, row {row + 1}{where}: {values.iloc[row]!r} is not a number; "
                "a regression target must be numeric"
            )
    return values


def _check_class_rows(labels: dict[str, pd.Series], column: str, task: TaskFrame) -> None:
    """Every class needs a row in each split: refuse one that is too rare to get them."""
    if "all" in labels:
        needed = 1 + (task.valid > 0) + (task.test > 0)
        counts = _class_counts(labels["all"])
        rare = counts[counts < needed]
        if len(rare):
            shown = ", ".join(f"{c!r} ({n} row{'s' if n > 1 else ''})" for c, n in rare.items())
            raise DataError(
                f"column {column!r}: too few rows for class {shown}: each class needs at least "
                f"{needed}, one per split; merge it into another with `label_map` or drop its rows"
            )
        return
    train = set(_class_counts(labels["train"]).index)
    for part in [p for p in ("valid", "test") if p in labels]:
        unseen = sorted(set(_class_counts(labels[part]).index) - train, key=str)
        if unseen:
            raise DataError(
                f"column {column!r} ({part} split): class {unseen[0]!r} has no training rows"
            )


def _class_counts(labels: pd.Series) -> pd.Series:
    """Rows per class, by label key (1, 1.0 and "1" are one class)."""
    counts = labels.value_counts()
    keys = [str(label_key(v)) for v in counts.index]
    return pd.Series(counts.to_numpy(), index=keys).groupby(level=0).sum()


def _targets(spec: TaskSpec, task: TaskFrame, frame: pd.DataFrame) -> np.ndarray:
    cols = task.target_columns
    if spec.type == TaskType.multilabel:
        return encode_targets(spec.type, frame[cols], spec.classes)
    values = apply_label_map(frame[cols[0]], task.label_map)
    return encode_targets(spec.type, values, spec.classes)


def _task_type(value: str) -> TaskType:
    try:
        return TaskType(value)
    except ValueError:
        raise DataError(
            f"unknown task type {value!r}; use binary, multiclass, multilabel or regression"
        ) from None
