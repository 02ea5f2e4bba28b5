"""``sweeps predict`` and ``sweeps register``: a recorded model put to use.

``predict_file`` reads a file of raw input columns (any table format the study's readers take,
with a header row; ``.npy``/``.npz`` rows for a study over arrays), predicts every task whose
input columns the file holds with the model of ``--trial`` (or of a task's baseline), and
writes one column per task output to ``--out`` (``.csv`` or ``.parquet``), whole or not at all.
``register`` puts a recorded model in the MLflow model registry of the study's tracking store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtl_core.data.readers import DataError, infer_format, read_arrays, read_table
from sweeps.errors import StudyError
from sweeps.models import MODEL_PATH, ModelRun, find_model_run, load_model
from sweeps.sqlite_stores import mlflow_client
from sweeps.table_files import check_out, write_whole


@dataclass
class Predicted:
    model: ModelRun
    rows: int
    tasks: list[str]
    skipped: dict[str, list[str]]  # task -> the input columns the file lacks
    out: Path


def predict_file(spec: Any, trial: str, baseline: str | None, source: Path, out: Path) -> Predicted:
    check_out(out, "predictions")
    if out.resolve() == source.resolve():
        raise StudyError("--out: the same file as --input; predictions would overwrite the inputs")
    found = find_model_run(spec, trial, baseline)
    model = load_model(spec, found)
    inputs = _read(source, array=model.space is None)
    from sweeps.pyfunc_model import tasks_fed  # here, not at the top: it loads the model code

    try:
        tasks = model.tasks if model.space is None else tasks_fed(model, inputs)
        predictions = model.predict(inputs, tasks)
    except DataError as exc:
        raise StudyError(f"--input {source}: {exc}") from None
    skipped = {
        t: [c for c in model.input_columns(t) if c not in inputs.columns]
        for t in model.tasks
        if t not in tasks
    }
    write_whole(predictions, out)
    return Predicted(found, len(predictions), tasks, skipped, out)


def _read(source: Path, array: bool):
    try:
        if array:
            if infer_format(source) not in ("npy", "npz"):
                raise DataError(f"{source}: the model takes rows of an array (.npy or .npz)")
            arrays = read_arrays(source)
            if len(arrays) != 1:
                raise DataError(f"{source}: holds {len(arrays)} arrays; give the rows only")
            return np.asarray(next(iter(arrays.values())))
        return read_table(source)
    except DataError as exc:
        raise StudyError(f"--input: {exc}") from None


def register(spec: Any, trial: str, name: str) -> tuple[ModelRun, Any]:
    """Register the model of ``--trial`` under ``name``; the new model version."""
    if not name.strip() or len(name) > 256 or any(c in name for c in "/\\\n\r\t"):
        raise StudyError(
            f"--name: {name!r}; a registered model's name is 1-256 characters, without "
            "slashes or line breaks"
        )
    found = find_model_run(spec, trial)
    from mlflow.exceptions import MlflowException  # mlflow stays out of light commands

    client = mlflow_client(spec.tracking, registry_uri=spec.tracking)
    try:
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(name)
        version = client.create_model_version(
            name,
            f"{found.run.info.artifact_uri}/{MODEL_PATH}",
            run_id=found.run_id,
            description=f"study {spec.name}: {found.describe}",
        )
    except MlflowException as exc:
        raise StudyError(f"--name {name!r}: the registry refused it: {exc.message}") from None
    return found, version
