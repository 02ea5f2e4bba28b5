"""Tasks over dense arrays: several targets of the same rows (images, dense vectors).

``tasks_from_arrays(x, {"digit": (labels, "multiclass"), "odd": (parity, "binary")})`` splits
the rows once (seeded; stratified on the first classification target) and gives every task
the *same* input arrays per split, so the joint schedule draws one batch of rows for all of
them and the trunk runs one forward pass per step.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from mtl_core.data.labels import encode_targets, label_classes
from mtl_core.data.prepare import TaskData
from mtl_core.data.readers import DataError
from mtl_core.data.splits import SPLITS, split_frame
from mtl_core.tasks import TaskSpec, TaskType, allowed_metrics


def tasks_from_arrays(
    x: np.ndarray,
    targets: Mapping[str, tuple[np.ndarray, str]],
    valid: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    metrics: Mapping[str, str] | None = None,
) -> dict[str, TaskData]:
    """``x``: (rows, ...) inputs; ``targets``: task -> (labels of every row, task type)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2:
        raise DataError(f"inputs need a row dimension and features, got shape {x.shape}")
    for name, (labels, _) in targets.items():
        if len(labels) != len(x):
            raise DataError(f"task {name!r}: {len(labels)} labels for {len(x)} rows")
    frame = pd.DataFrame({"row": np.arange(len(x))})
    for name, (labels, _) in targets.items():
        frame[name] = labels
    types = {name: TaskType(kind) for name, (_, kind) in targets.items()}
    stratify = next(
        (frame[n] for n, t in types.items() if t in (TaskType.binary, TaskType.multiclass)), None
    )
    parts = split_frame(frame, valid, test, seed, stratify)
    rows = {s: parts[s]["row"].to_numpy() for s in SPLITS}
    inputs = {s: x[rows[s]] for s in SPLITS}  # one array per split, shared by every task
    out = {}
    for name, task_type in types.items():
        classes = label_classes(task_type, frame[name])
        y = {s: encode_targets(task_type, parts[s][name], classes) for s in SPLITS}
        metric = (metrics or {}).get(name) or (
            "f1" if task_type == TaskType.binary else allowed_metrics(task_type)[0]
        )
        mean, std = 0.0, 1.0
        if task_type == TaskType.regression:
            mean, std = float(y["train"].mean()), float(y["train"].std()) or 1.0
        spec = TaskSpec(name, task_type, metric, classes, mean, std)
        out[name] = TaskData(spec, dict(inputs), y)
    return out
