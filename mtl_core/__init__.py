"""mtl_core: trainable multi-task models, schedules and loss weighting, in plain PyTorch.

Ten lines from data frames to per-task metrics and transfer::

    from mtl_core import TaskFrame, TrainConfig, fit, prepare_tasks, transfer
    tasks, _ = prepare_tasks({"imdb": TaskFrame(frame=imdb, inputs="text", target="label", type="binary"),
                              "yelp": TaskFrame(frame=yelp, inputs="text", target="label", type="binary")})
    config = TrainConfig(hidden_size=64, epochs=5, schedule="joint")
    multi = fit(tasks, config)
    single = {name: fit([task], config).primary()[name] for name, task in tasks.items()}
    print(transfer.deltas(multi.primary(), single, multi.metric))

Nothing here imports Optuna, MLflow or YAML. ``import mtl_core`` is light: torch loads when
training does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mtl_core import transfer
    from mtl_core.data.arrays import tasks_from_arrays
    from mtl_core.data.features import FeatureSpace, TextFeatures
    from mtl_core.data.prepare import TaskData, TaskFrame, prepare_tasks
    from mtl_core.data.readers import DataError, read_table
    from mtl_core.tasks import TaskSpec, TaskType
    from mtl_core.train import Callback, EpochLog, FitResult, TrainConfig, TrainingDiverged, fit

# every name loads its module when first asked for: `import mtl_core.registry` (what
# `sweeps methods` and `validate` read) no longer loads scikit-learn and pandas (1.2 s)
_HOMES = {
    "transfer": "mtl_core.transfer",
    "tasks_from_arrays": "mtl_core.data.arrays",
    "FeatureSpace": "mtl_core.data.features",
    "TextFeatures": "mtl_core.data.features",
    "TaskData": "mtl_core.data.prepare",
    "TaskFrame": "mtl_core.data.prepare",
    "prepare_tasks": "mtl_core.data.prepare",
    "DataError": "mtl_core.data.readers",
    "read_table": "mtl_core.data.readers",
    "TaskSpec": "mtl_core.tasks",
    "TaskType": "mtl_core.tasks",
    **dict.fromkeys(
        ["Callback", "EpochLog", "FitResult", "TrainConfig", "TrainingDiverged", "fit"],
        "mtl_core.train",  # torch loads only when training is asked for
    ),
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        module = importlib.import_module(_HOMES[name])
        return module if name == "transfer" else getattr(module, name)
    raise AttributeError(f"module 'mtl_core' has no attribute {name!r}")


__all__ = [
    "Callback",
    "DataError",
    "EpochLog",
    "FeatureSpace",
    "FitResult",
    "TaskData",
    "TaskFrame",
    "TaskSpec",
    "TaskType",
    "TextFeatures",
    "TrainConfig",
    "TrainingDiverged",
    "fit",
    "prepare_tasks",
    "read_table",
    "tasks_from_arrays",
    "transfer",
]
