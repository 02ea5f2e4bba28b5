"""The study's trained models on the record: logged on their runs as MLflow Models, and found
again for ``sweeps predict`` and ``sweeps register``.

Which runs hold a model (artifact path ``model``): every baseline run; with confirmation on,
every confirm run (the winners); without it, a trial whose validation objective is among the
best ``search.log_models`` of the study's complete trials when it ends (the best trial by
validation always has one). A run trained over several seeds holds its first seed's model
(tag ``mtl.model_seed``); that model's own validation and test metrics are in
``model/data/model.json``.

The MLflow Model is the ``python_function`` flavour with a *loader module*
(``sweeps.pyfunc_model``, part of the installed package): nothing is pickled into it and no
code is copied into the folder, so loading it runs only the package's own code on JSON and
safetensors files (``mtl_core.saved_model``). It carries a signature (input: the raw input
columns, as optional columns so that a frame may hold the inputs of some tasks only; output:
one column per task output) and an input example of two training rows.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sweeps import record
from sweeps.errors import StudyError
from sweeps.spec import trunk_factories

if TYPE_CHECKING:
    from mtl_core.saved_model import TrainedModel
    from mtl_core.train import FitResult, TrainConfig
    from sweeps.study_data import StudyData

# a model is downloaded in a moment: no progress bar over the command's own output
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

MODEL_PATH = "model"  # the run's artifact path that holds the MLflow Model
FOLDER = "mtl_model"  # the mtl_core model folder (mtl_core.saved_model) ...
DATA_PATH = f"data/{FOLDER}"  # ... where MLflow keeps it inside the Model
LOADER = "sweeps.pyfunc_model"
_HISTORY = "mlflow.log-model.history"  # the tag the MLflow UI's Models column reads


def record_model(
    tracker: Any,
    run_id: str,
    result: FitResult,
    config: TrainConfig,
    data: StudyData,
    seed: int,
) -> bool:
    """Log the model a fit trained (``result.model``, trained with ``config`` on ``data``) on
    its run; its metrics of that fit go into its ``model.json``."""
    # here, not at the top: torch loads only when a model is recorded
    from mtl_core.saved_model import TrainedModel

    tasks = [data.tasks[t] for t in result.tasks]
    metrics = {"seed": seed, "best_epoch": result.best_epoch}
    metrics |= {"valid": result.valid, "test": result.test}
    trained = TrainedModel.from_fit(
        result.model, config, [t.spec for t in tasks], tasks[0].input_shape, data.space, metrics
    )
    return log_model(tracker, run_id, trained, data.example, seed)


def log_model(
    tracker: Any, run_id: str, model: TrainedModel, example: pd.DataFrame | None, seed: int
) -> bool:
    """Log ``model`` on the run as an MLflow Model at ``model``; False (and the run's
    ``mtl.artifact_error`` tag) where the artifact store cannot be written."""
    # here, not at the top: mlflow's model code loads only when a model is logged
    import mlflow.pyfunc
    from mlflow.models import Model  # (as above)

    with tempfile.TemporaryDirectory(prefix="mtl-model-") as tmp:
        data = model.save(Path(tmp) / FOLDER)
        folder = Path(tmp) / MODEL_PATH
        mlflow.pyfunc.save_model(
            str(folder),
            loader_module=LOADER,
            data_path=str(data),
            signature=signature(model),
            input_example=_example(model, example),
            pip_requirements=requirements(),
        )
        if not tracker.log_artifact(run_id, folder, MODEL_PATH):
            return False
        described = Model.load(str(folder / "MLmodel"))
        described.run_id, described.artifact_path = run_id, MODEL_PATH
        entry = described.get_tags_dict()
        tracker.log(run_id, tags={_HISTORY: json.dumps([entry]), record.MODEL_SEED: str(seed)})
    return True


def signature(model: TrainedModel):
    """Input: every raw input column (optional: a frame may feed some tasks only); text as
    strings, table columns of any type (numbers may come as integers or floats, categories as
    numbers or strings; the model checks them and names a bad one); output: one column per
    task output."""
    from mlflow.models import ModelSignature  # mlflow stays out of light commands
    from mlflow.types import ColSpec, Schema, TensorSpec  # (as above)
    from mlflow.types.schema import AnyType  # (as above)

    from mtl_core.data.features import TEXT_KINDS  # (as above)

    if model.space is None:  # dense arrays (images)
        shape = (-1, *model.build["input_shape"])
        inputs = Schema([TensorSpec(np.dtype(np.float32), shape)])
    else:
        kinds = model.space.kinds
        inputs = Schema(
            [
                ColSpec("string" if kinds.get(c) in TEXT_KINDS else AnyType(), c, required=False)
                for c in model.input_columns()
            ]
        )
    types = {"label": "string", "int": "long", "float": "double"}
    outputs = Schema([ColSpec(types[kind], name) for name, kind in model.output_columns()])
    return ModelSignature(inputs, outputs)


def _example(model: TrainedModel, example: pd.DataFrame | None):
    if model.space is None or example is None:
        return None
    columns = model.input_columns()
    return example[[c for c in columns if c in example.columns]] if len(columns) else None


def requirements() -> list[str]:
    """What a fresh environment needs to load the model: this package (it holds the loader
    module) and the versions of the libraries it was saved with."""
    from importlib.metadata import PackageNotFoundError, version  # only when saving

    out = []
    for name in ("mtl-sweeps", "torch", "safetensors", "scikit-learn", "pandas", "numpy"):
        try:
            out.append(f"{name}=={version(name).split('+')[0]}")  # no local label (+cpu)
        except PackageNotFoundError:
            out.append(name)
    return out


# finding a model again ----------------------------------------------------------------------


@dataclass
class ModelRun:
    """The run whose model was asked for, and a line saying which it is."""

    run: Any
    describe: str

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    @property
    def uri(self) -> str:
        return f"runs:/{self.run_id}/{MODEL_PATH}"


def has_model(run: Any) -> bool:
    return _HISTORY in run.data.tags and record.MODEL_SEED in run.data.tags


def find_model_run(spec: Any, trial: str = "best", baseline: str | None = None) -> ModelRun:
    """The run of ``--trial best|N`` (best: the validation winner, its confirm run when it
    was confirmed) or, with ``baseline``, the single-task baseline of that task the run was
    compared with. Raises ``StudyError`` saying what is missing."""
    from sweeps import verdict  # here, not at the top: verdict reads the whole record

    if baseline is not None and baseline not in spec.task_names:
        raise StudyError(
            f"--baseline: no task {baseline!r}; the study's tasks are {spec.task_names}"
        )
    runs = verdict.study_runs(spec)
    if trial == "best":
        winner = verdict.pick_winner(runs[record.TRIAL], runs[record.CONFIRM])
        if winner is None:
            raise StudyError(f"study {spec.name!r} has no complete trial yet (sweeps run first)")
        run_id = winner.confirm_run or winner.trial_run
        number = winner.number
        chosen = next(
            r for r in runs[record.TRIAL] + runs[record.CONFIRM] if r.info.run_id == run_id
        )
        what = f"{'confirm run of ' if winner.confirmed else ''}trial {number} (best by validation)"
    else:
        try:
            number = int(trial)
        except ValueError:
            raise StudyError(f"--trial: {trial!r} is neither 'best' nor a trial number") from None
        chosen, what = _numbered(runs, number)
    if baseline is not None:
        baseline_id = record.baseline_runs(chosen.data.tags).get(baseline)
        if baseline_id is None:
            raise StudyError(
                f"{what} did not train task {baseline!r}; its tasks are {record.tasks_of(chosen)}"
            )
        found = [r for r in runs[record.BASELINE] if r.info.run_id == baseline_id]
        if not found:
            raise StudyError(f"the baseline run {baseline_id} of {what} is not in the record")
        chosen, what = found[0], f"the {baseline!r} baseline of {what}"
    if not has_model(chosen):
        raise StudyError(
            f"{what} has no recorded model (run {chosen.info.run_id}); models are logged on "
            "baselines, confirm runs and, without confirmation, the best `search.log_models` "
            "trials by validation"
        )
    return ModelRun(chosen, what)


def _numbered(runs: dict[str, list[Any]], number: int) -> tuple[Any, str]:
    confirm = [
        r
        for r in runs[record.CONFIRM]
        if r.data.tags.get(record.CONFIRMS) == str(number) and record.is_complete(r)
    ]
    if confirm and has_model(confirm[0]):
        return confirm[0], f"confirm run of trial {number}"
    trials = [r for r in runs[record.TRIAL] if r.data.tags.get(record.TRIAL_NUMBER) == str(number)]
    if not trials:
        raise StudyError(f"--trial: the study has no trial {number}")
    done = [r for r in trials if record.is_complete(r)]
    if not done and record.REUSES in trials[0].data.tags:
        original = trials[0].data.tags[record.REUSES]
        raise StudyError(
            f"--trial: trial {number} repeated the settings of trial {original} and was not "
            f"trained again; its model is trial {original}'s (--trial {original})"
        )
    if not done:
        raise StudyError(f"--trial: trial {number} is {record.state_of(trials[0])}, not complete")
    return done[0], f"trial {number}"


def load_model(spec: Any, found: ModelRun) -> TrainedModel:
    """The run's model, downloaded from the artifact store (on the CPU)."""
    from mlflow.artifacts import download_artifacts  # mlflow stays out of light commands

    # torch loads only when a model is read
    from mtl_core.saved_model import ModelFileError, TrainedModel

    with tempfile.TemporaryDirectory(prefix="mtl-model-") as tmp:
        local = download_artifacts(
            run_id=found.run_id,
            artifact_path=f"{MODEL_PATH}/{DATA_PATH}",
            dst_path=tmp,
            tracking_uri=spec.tracking,
        )
        try:  # the study's own trunk factories are trusted: it names them and validate ran them
            return TrainedModel.load(local, trusted=trunk_factories(spec))
        except ModelFileError as exc:
            raise StudyError(f"the model of {found.describe} cannot be read: {exc}") from None
