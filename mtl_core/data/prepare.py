"""From data frames to tasks ready to train: labels encoded, rows split, features fitted.

Partial labels: a task with ``partial_labels`` may lack its label on some rows of a table
(an empty field, NaN, or a marker the reader was told is missing). Such rows stay in the
table and in every other task's data; the task keeps the positions of its labelled rows per
split (``TaskData.labelled``), its targets hold a placeholder elsewhere, and training,
metrics and baselines use its labelled rows only. Tasks that share a table are split
together, stratified on every task's label (or on whether it is labelled) where the rows
allow it, so each task's labelled rows reach train, validation and test.
"""

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
from mtl_core.data.splits import SPLITS, can_stratify, check_split_size, split_positions
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
    partial_labels: bool = False  # rows without a label are unlabelled for this task

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
    # positions of the rows that carry this task's label, per split (None: every row does)
    labelled: dict[str, np.ndarray] | None = field(default=None, repr=False)

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

    def labelled_positions(self, split: str) -> np.ndarray:
        """The positions of the rows of ``split`` that carry this task's label."""
        if self.labelled is None:
            return np.arange(self.rows(split))
        return self.labelled[split]

    def labelled_rows(self, split: str) -> int:
        return self.rows(split) if self.labelled is None else len(self.labelled[split])


def prepare_tasks(
    tasks: Mapping[str, TaskFrame],
    text: Mapping[str, TextFeatures] | None = None,
    seed: int = 0,
) -> tuple[dict[str, TaskData], FeatureSpace]:
    """Check every input and target column, encode labels, split rows (seeded, stratified
    for classification) and fit one shared feature space on the training rows. Raises
    ``DataError`` naming the task, the column and, where one is at fault, the row."""
    kinds: dict[str, str] = {c: t.kind for c, t in (text or {}).items()}
    checked: dict[str, _Checked] = {}
    for name, task in tasks.items():
        try:
            checked[name] = _check(task, kinds)
        except DataError as exc:
            raise exc.within(task=name) from exc
    tables: dict[tuple, list[str]] = {}
    for name, task in tasks.items():
        tables.setdefault(_table_key(task), []).append(name)
    split_frames: dict[str, dict[str, pd.DataFrame]] = {}
    specs: dict[str, TaskSpec] = {}
    labelled: dict[str, dict[str, np.ndarray] | None] = {}
    raw: dict[str, dict[str, pd.Series | pd.DataFrame]] = {}  # labels per split, mapped once
    for names in tables.values():
        try:
            frames = _split_table([(tasks[n], checked[n]) for n in names], seed)
        except DataError as exc:
            raise exc.within(task=names[0]) from exc
        for name in names:
            raw[name] = {s: _raw_labels(tasks[name], frames[s]) for s in SPLITS}
            try:
                specs[name], labelled[name] = _spec(name, tasks[name], checked[name], raw[name])
            except DataError as exc:
                raise exc.within(task=name) from exc
            split_frames[name] = frames
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
        y = {s: _targets(specs[name], task, raw[name][s]) for s in SPLITS}
        prepared[name] = TaskData(specs[name], x, y, labelled[name])
    return prepared, space


def _names_column(message: str, columns: Sequence[str]) -> bool:
    return any(f"column {c!r}" in message for c in columns)


def _table_key(task: TaskFrame) -> tuple:
    """Tasks that read the same data frames with the same fractions share their rows."""
    if task.frame is not None:
        return (id(task.frame), task.valid, task.test)
    return (tuple((s, id(f)) for s, f in sorted(task.splits.items())), task.valid)


@dataclass
class _Checked:
    """A task's frames (``all``, or one per split file) with their checked labels."""

    task_type: TaskType
    metric: str
    frames: dict[str, pd.DataFrame]
    labels: dict[str, pd.Series | pd.DataFrame]
    classes: tuple[str, ...]


def _check(task: TaskFrame, kinds: dict) -> _Checked:
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
            missing = []  # carved from the training file
        if missing:
            raise DataError(f"`splits` lacks {', '.join(missing)}")
        frames = dict(task.splits)
    targets = task.target_columns
    if task_type != TaskType.multilabel and len(targets) != 1:
        raise DataError(f"a {task_type} task has one target column, got {len(targets)}")
    labels: dict[str, pd.Series | pd.DataFrame] = {}
    for part, frame in frames.items():
        try:
            labels[part] = _check_split(task, task_type, frame, part, kinds)
        except DataError as exc:
            raise exc.within(split=None if part == "all" else part) from None
    every = pd.concat(labels.values(), ignore_index=True)
    present = every[_has_label(every)]
    if not len(present):
        raise DataError(f"column {targets[0]!r} has no labels (every row is empty)")
    try:
        classes = label_classes(task_type, present)
    except DataError as exc:
        raise DataError(f"column {targets[0]!r}: {exc}") from None
    if task.frame is not None:
        check_split_size(len(task.frame), task.valid, task.test)
    if task_type in (TaskType.binary, TaskType.multiclass):
        present_by_part = {p: v[_has_label(v)] for p, v in labels.items()}
        _check_class_rows(present_by_part, targets[0], task)
    return _Checked(task_type, metric, frames, labels, classes)


def _split_table(members: list[tuple[TaskFrame, _Checked]], seed: int) -> dict[str, pd.DataFrame]:
    """Split a table once for all the tasks that read it. Without partial labels the split
    is stratified on the first classification task's label, as a table of one task is;
    with them, on every task's label (or whether it has one) together, where each such
    stratum has enough rows, else on fewer of them."""
    task, first = members[0]
    frames = first.frames
    if task.frame is not None:
        part, n, valid, test = "all", len(frames["all"]), task.valid, task.test
    elif "valid" not in frames:  # a fraction of the training file becomes validation rows
        part, n, valid, test = "train", len(frames["train"]), task.valid, 0.0
    else:
        return frames
    strat = _strata([(c.task_type, c.labels[part], t.partial_labels) for t, c in members])
    if any(t.partial_labels for t, _ in members):
        usable = next((s for s in strat if can_stratify(s, n, valid, test)), None)
    else:  # split_positions stratifies where it can, as it always did
        usable = strat[0] if strat else None
    try:
        rows = split_positions(n, valid, test, seed, usable)
    except DataError as exc:
        if part == "all":
            raise exc from None
        raise DataError(f"{exc.reason} (train split)", split="train") from None
    if part == "all":
        return _cut_rows(frames["all"], rows)
    return {**_cut_rows(frames["train"], rows), "test": frames["test"]}


def _strata(members: list[tuple[TaskType, pd.Series, bool]]) -> list[pd.Series]:
    """Stratification keys for a table's split, most detailed first."""
    classify = (TaskType.binary, TaskType.multiclass)
    first = next((labels for kind, labels, _ in members if kind in classify), None)
    if not any(partial for _, _, partial in members):
        return [first.astype(str)] if first is not None else []
    keys = []
    for kind, labels, partial in members:
        has = pd.Series(_has_label(labels))
        if kind in classify:
            keys.append(labels.astype(str).where(has.to_numpy(), "(none)").reset_index(drop=True))
        elif partial:
            keys.append(has.map({True: "labelled", False: "(none)"}))
    flags = [
        pd.Series(_has_label(labels)).map({True: "labelled", False: "(none)"})
        for _, labels, partial in members
        if partial
    ]
    out = [_join(keys)]
    if first is not None:
        out.append(_join([first.astype(str).reset_index(drop=True), *flags]))
    out.append(_join(flags))
    return out


def _join(keys: list[pd.Series]) -> pd.Series:
    joined = keys[0].astype(str)
    for key in keys[1:]:
        joined = joined + "|" + key.astype(str)
    return joined


def _has_label(labels: pd.Series | pd.DataFrame) -> np.ndarray:
    if isinstance(labels, pd.DataFrame):
        return labels.notna().all(axis=1).to_numpy()
    return labels.notna().to_numpy()


def _spec(
    name: str, task: TaskFrame, checked: _Checked, raw: dict[str, pd.Series | pd.DataFrame]
) -> tuple[TaskSpec, dict[str, np.ndarray] | None]:
    """The task's spec (regression scaled on labelled training rows) and, for partial
    labels, its labelled positions per split (refused when a split has none)."""
    labelled = None
    if task.partial_labels:
        labelled = {s: np.flatnonzero(_has_label(raw[s])) for s in SPLITS}
        empty = [s for s in SPLITS if not len(labelled[s])]
        if empty:
            counts = ", ".join(f"{s} {len(labelled[s])}" for s in SPLITS)
            raise DataError(
                f"column {task.target_columns[0]!r}: too few labelled rows: {counts} of "
                f"{sum(len(v) for v in raw.values())}; every split needs labelled rows "
                "(label more rows, or give the split larger fractions)"
            )
    mean, std = 0.0, 1.0
    if checked.task_type == TaskType.regression:
        train = raw["train"]
        if labelled is not None:
            train = train.iloc[labelled["train"]]
        train_y = encode_targets(checked.task_type, train, checked.classes)
        mean, std = float(train_y.mean()), float(train_y.std()) or 1.0
    spec = TaskSpec(name, checked.task_type, checked.metric, checked.classes, mean, std)
    return spec, labelled


def _raw_labels(task: TaskFrame, frame: pd.DataFrame) -> pd.Series | pd.DataFrame:
    cols = task.target_columns
    if len(cols) > 1 or TaskType(task.type) == TaskType.multilabel:
        return frame[cols]
    return apply_label_map(_blank_to_missing(frame[cols[0]]), task.label_map)


def _blank_to_missing(values: pd.Series) -> pd.Series:
    """An empty or blank field is a missing label."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values
    blank = values.astype(str).str.strip() == ""
    return values.where(~blank.to_numpy(), None) if blank.any() else values


def _cut_rows(frame: pd.DataFrame, rows: Mapping[str, np.ndarray]) -> dict[str, pd.DataFrame]:
    return {
        s: frame.iloc[positions].reset_index(drop=True)
        for s, positions in rows.items()
        if s != "test" or len(positions)
    }


def _check_split(task: TaskFrame, task_type: TaskType, frame: pd.DataFrame, part: str, kinds):
    """One split's (or the one file's) columns, rows and labels; its raw labels."""
    where = "" if part == "all" else f" ({part} split)"
    for col in task.input_columns + task.target_columns:
        if col not in frame.columns:
            raise DataError(
                f"no column {col!r}{where}; columns are {list(frame.columns)}", column=col
            )
    if len(frame) == 0:
        raise DataError(f"no rows{where}")
    for col in task.input_columns:
        if col not in kinds:
            kinds[col] = column_kind(frame[col])
        try:
            check_column(frame[col], col, kinds[col])
        except DataError as exc:
            raise DataError(f"{exc.reason}{where}", column=col, row=exc.row) from None
    return _labels(task_type, task, frame, where)


def _labels(task_type: TaskType, task: TaskFrame, frame: pd.DataFrame, where: str):
    """A split's raw labels, after ``label_map``, checked row by row (missing where a
    partially labelled task has no label)."""
    targets = task.target_columns
    if task_type == TaskType.multilabel:
        values = frame[targets]
        absent = values.isna().all(axis=1).to_numpy() if task.partial_labels else None
        for col in targets:
            numbers = pd.to_numeric(values[col], errors="coerce")
            bad = ~numbers.isin((0, 1)).to_numpy()
            if absent is not None:
                bad &= ~absent
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"column {col!r}, row {row + 1}{where}: {values[col].iloc[row]!r}; "
                    "multilabel target columns hold 0 or 1 (a row without labels leaves them all "
                    "empty, with partial_labels)",
                    column=col,
                    row=row + 1,
                )
        return values
    col = targets[0]
    values = _blank_to_missing(frame[col])
    empty = values.isna()
    if empty.any() and not task.partial_labels:
        row = int(np.flatnonzero(empty.to_numpy())[0])
        raise DataError(
            f"column {col!r} has an empty label (row {row + 1}{where}; "
            f"{int(empty.sum())} empty in all); set `partial_labels: true` if such rows are "
            "unlabelled for this task",
            column=col,
            row=row + 1,
        )
    try:
        values = apply_label_map(values, task.label_map)
    except DataError as exc:
        raise DataError(f"column {col!r}{where}: {exc}", column=col) from None
    if task_type == TaskType.regression:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(numbers) & ~empty.to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"column {col!r}, row {row + 1}{where}: {values.iloc[row]!r} is not a number; "
                "a regression target must be numeric",
                column=col,
                row=row + 1,
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
                f"column {column!r} ({part} split): class {unseen[0]!r} has no training rows",
                split=part,
                column=column,
            )


def _class_counts(labels: pd.Series) -> pd.Series:
    """Rows per class, by label key (1, 1.0 and "1" are one class)."""
    counts = labels.value_counts()
    keys = [str(label_key(v)) for v in counts.index]
    return pd.Series(counts.to_numpy(), index=keys).groupby(level=0).sum()


def _targets(spec: TaskSpec, task: TaskFrame, values: pd.Series | pd.DataFrame) -> np.ndarray:
    """Encoded targets of every row of a split (``values``: its labels after ``label_map``);
    rows without a label hold a placeholder (0) that training and metrics never read."""
    if not task.partial_labels:
        return encode_targets(spec.type, values, spec.classes)
    has = _has_label(values)
    present = encode_targets(spec.type, values[has], spec.classes)
    out = np.zeros((len(values), *present.shape[1:]), dtype=present.dtype)
    out[has] = present
    return out


def _task_type(value: str) -> TaskType:
    try:
        return TaskType(value)
    except ValueError:
        raise DataError(
            f"unknown task type {value!r}; use binary, multiclass, multilabel or regression"
        ) from None
