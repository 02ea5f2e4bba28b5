"""Raw label columns become training targets, as the task's type says.

Labels are compared by key (``label_key``: 1, 1.0 and "1" are one label). Every lookup works
on a column's distinct values and maps the column with pandas, so a 200,000-row table costs
no Python loop over its rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.data.readers import DataError
from mtl_core.tasks import TaskType


def apply_label_map(values: pd.Series, label_map: Mapping[Any, Any] | None) -> pd.Series:
    """Rename or merge raw labels; a raw label the map does not name is an error."""
    if not label_map:
        return values
    lookup = {label_key(k): v for k, v in label_map.items()}
    distinct = [v for v in values.unique() if not _is_missing(v)]
    unmapped = [v for v in distinct if label_key(v) not in lookup]
    if unmapped:
        shown = ", ".join(repr(v) for v in sorted({str(v) for v in unmapped})[:5])
        raise DataError(f"label_map does not name the raw label(s) {shown}")
    return values.map({v: lookup[label_key(v)] for v in distinct})


def label_classes(task_type: TaskType, values: pd.Series | pd.DataFrame) -> tuple[str, ...]:
    """The classes in head order, found from every row of the task (all splits)."""
    if task_type == TaskType.regression:
        return ()
    if task_type == TaskType.multilabel:
        return tuple(str(c) for c in values.columns)
    classes = sorted({label_key(v) for v in values.unique()}, key=_sort_key)
    if task_type == TaskType.binary and len(classes) != 2:
        shown = ", ".join(repr(c) for c in classes[:6])
        raise DataError(
            f"a binary task needs exactly 2 distinct labels, found {len(classes)}: {shown}"
        )
    if task_type == TaskType.multiclass and len(classes) < 2:
        raise DataError(f"a multiclass task needs at least 2 distinct labels, found {len(classes)}")
    return tuple(str(c) for c in classes)


def encode_targets(
    task_type: TaskType, values: pd.Series | pd.DataFrame, classes: tuple[str, ...]
) -> np.ndarray:
    if task_type == TaskType.regression:
        out = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float32)
        if np.isnan(out).any():
            raise DataError("a regression target must be numeric and not empty")
        return out
    if task_type == TaskType.multilabel:
        matrix = values.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float32)
        if np.isnan(matrix).any() or not np.isin(matrix, (0.0, 1.0)).all():
            raise DataError("multilabel target columns must hold 0 or 1")
        return matrix
    index = {c: i for i, c in enumerate(classes)}
    codes = values.map({v: index[str(label_key(v))] for v in values.unique()})
    codes = codes.to_numpy(dtype=np.int64)
    return codes.astype(np.float32) if task_type == TaskType.binary else codes


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def label_key(value: Any) -> Any:
    """One key for labels read as 1, 1.0 or "1"."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, np.generic):
        return label_key(value.item())
    return value


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))
