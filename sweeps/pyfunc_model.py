"""The loader module of the study's MLflow Models (``loader_module`` of the pyfunc flavour).

``mlflow.pyfunc.load_model("runs:/<run id>/model")`` calls ``_load_pyfunc`` with the model's
``data`` folder; the model is read by ``mtl_core.saved_model.TrainedModel.load`` (JSON and
safetensors only, nothing unpickled) onto the CPU. ``predict`` takes a frame of raw input
columns and returns one column per task output, for every task whose input columns the frame
holds (a study over arrays takes an array of rows).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mtl_core.data.readers import DataError
from mtl_core.saved_model import TrainedModel


class StudyModel:
    """What ``mlflow.pyfunc`` wraps: ``predict(frame) -> frame``."""

    def __init__(self, model: TrainedModel) -> None:
        self.model = model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if self.model.space is None:
            return self.model.predict(model_input)
        frame = pd.DataFrame(model_input)
        return self.model.predict(frame, tasks_fed(self.model, frame))


def tasks_fed(model: TrainedModel, frame: pd.DataFrame) -> list[str]:
    """The tasks whose every input column the frame holds; refuses one that feeds none,
    naming the first missing column of each task."""
    fed = [t for t in model.tasks if set(model.input_columns(t)) <= set(frame.columns)]
    if fed:
        return fed
    lacking = {
        t: next(c for c in model.input_columns(t) if c not in frame.columns) for t in model.tasks
    }
    first = next(iter(lacking.values()))
    said = ", ".join(f"{t} needs {c!r}" for t, c in lacking.items())
    raise DataError(
        f"no column {first!r}: the input feeds no task of the model ({said}); it has "
        f"{list(map(str, frame.columns))[:20]}",
        column=first,
    )


def _load_pyfunc(data_path: str) -> StudyModel:
    return StudyModel(TrainedModel.load(data_path, device="cpu"))
