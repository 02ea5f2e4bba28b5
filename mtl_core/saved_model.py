"""A trained multi-task model together with what turns raw inputs into its tensors.

``TrainedModel.predict(frame)`` takes a pandas frame of raw input columns (the columns the
tasks were trained on, as a reader gives them) and returns one column per task output:

- binary and multiclass tasks: ``TASK`` (the predicted class, as labelled in the data) and
  ``TASK/p/CLASS`` (each class's probability);
- multilabel tasks: ``TASK/LABEL`` (0 or 1) and ``TASK/p/LABEL`` for each label column;
- regression tasks: ``TASK`` (the value, in the target's own units).

Studies over dense arrays (images) take an array of rows instead of a frame.

``save(folder)`` writes three files and ``TrainedModel.load(folder)`` reads them back; nothing
in the folder is executed or unpickled on load:

- ``model.json``: the format version, the model's build arguments (the architecture is looked
  up by name in ``mtl_core.registry``, so the code that runs is the installed package's), each
  task's spec (type, metric, classes, target scaling) and optional metrics;
- ``weights.safetensors``: the state dict (safetensors holds tensors only);
- ``features.json``: the fitted feature space (vocabularies, IDF weights, medians, means,
  standard deviations, categories); absent for array inputs.

A model trained on a GPU loads on the CPU (``device="cpu"``, the default). The one exception to
"nothing is executed": a model whose trunk is the user's own factory imports and calls it to be
built, and ``load`` refuses it unless that factory is trusted (see ``load``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from mtl_core import tasks as task_types
from mtl_core.config import TrainConfig
from mtl_core.data.features import FeatureSpace, non_numbers
from mtl_core.data.readers import DataError
from mtl_core.models import ARCHITECTURES, build_model
from mtl_core.models.sparse_input import EVAL_BATCH, input_batch
from mtl_core.tasks import TaskSpec, TaskType
from mtl_core.train import resolve_device
from mtl_core.trunk_factory import FactoryError, is_factory_name

FORMAT = 1
MODEL_FILE, WEIGHTS_FILE, FEATURES_FILE = "model.json", "weights.safetensors", "features.json"
_BUILD_KEYS = {"architecture", "input_shape", "hidden_size", "depth", "activation", "dropout"}
_BUILD_KEYS |= {"trunk", "settings"}


class ModelFileError(ValueError):
    """A saved model folder that cannot be loaded; the message names the file."""


@dataclass
class TrainedModel:
    """A model and its featurizer; ``specs`` in head order, ``metrics`` as measured when it
    was trained (``{"valid": {task: {metric: v}}, "test": ...}``), for the record."""

    model: torch.nn.Module = field(repr=False)
    build: dict[str, Any]
    specs: list[TaskSpec]
    space: FeatureSpace | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_fit(
        cls,
        model: torch.nn.Module,
        config: TrainConfig,
        specs: Sequence[TaskSpec],
        input_shape: Sequence[int],
        space: FeatureSpace | None,
        metrics: Mapping[str, Any] | None = None,
    ) -> TrainedModel:
        """Wrap a model that ``mtl_core.train.fit`` trained with ``config`` on tasks of these
        specs (``FitResult.model``); ``space``: the feature space its rows came from."""
        entry = ARCHITECTURES.entry(config.architecture)
        build = {
            "architecture": config.architecture,
            "input_shape": [int(d) for d in input_shape],
            "hidden_size": config.hidden_size,
            "depth": config.depth,
            "activation": config.activation,
            "dropout": config.dropout,
            "trunk": config.trunk,
            **({"trunk_options": dict(config.trunk_options)} if config.trunk_options else {}),
            "settings": {
                **{p.name: p.kind(v) for p, v in _params(entry, config)},
                **_towers(config),
            },
        }
        return cls(
            model,
            build,
            list(specs),
            space if space and space.blocks else None,
            dict(metrics or {}),
        )

    @property
    def tasks(self) -> list[str]:
        return [s.name for s in self.specs]

    def input_columns(self, task: str | None = None) -> list[str]:
        """The raw columns ``predict`` reads (for one task, or for all)."""
        if self.space is None:
            return []
        out: list[str] = []
        for b in self.space.blocks:
            if task is None or task in b.tasks:
                out += [c for c in b.columns if c not in out]
        return out

    def output_columns(self, task: str | None = None) -> list[tuple[str, str]]:
        """(name, kind) of every column ``predict`` writes; kind is ``label``, ``int`` or
        ``float``."""
        out = []
        for spec in self.specs:
            if task is not None and spec.name != task:
                continue
            t = spec.name
            if spec.type == TaskType.regression:
                out.append((t, "float"))
            elif spec.type == TaskType.multilabel:
                out += [(f"{t}/{c}", "int") for c in spec.classes]
                out += [(f"{t}/p/{c}", "float") for c in spec.classes]
            else:
                out.append((t, "label"))
                out += [(f"{t}/p/{c}", "float") for c in spec.classes]
        return out

    # predicting -------------------------------------------------------------------------

    def scores(self, inputs: pd.DataFrame | np.ndarray, task: str) -> np.ndarray:
        """The task's scores as its metrics take them (``mtl_core.tasks.predict``)."""
        spec = self._spec(task)
        matrix = self._rows(inputs, task)
        device = next(self.model.parameters()).device
        self.model.eval()
        n = int(matrix.shape[0])
        with torch.no_grad():
            logits = [
                self.model(input_batch(matrix[i : min(n, i + EVAL_BATCH)]).to(device), task)
                for i in range(0, n, EVAL_BATCH)
            ]
        if not logits:
            return np.zeros((0, *([spec.head_size] if spec.head_size > 1 else [])))
        return task_types.predict(spec, torch.cat(logits))

    def predict(
        self, inputs: pd.DataFrame | np.ndarray, tasks: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """One column per task output (see the module's docstring), one row per input row."""
        index = inputs.index if isinstance(inputs, pd.DataFrame) else None
        columns: dict[str, Any] = {}
        for task in tasks or self.tasks:
            spec = self._spec(task)
            scores = self.scores(inputs, task)
            if spec.type == TaskType.regression:
                columns[task] = scores.astype(np.float64)
            elif spec.type == TaskType.multilabel:
                for i, c in enumerate(spec.classes):
                    columns[f"{task}/{c}"] = (scores[:, i] >= 0.5).astype(np.int64)
                for i, c in enumerate(spec.classes):
                    columns[f"{task}/p/{c}"] = scores[:, i].astype(np.float64)
            else:
                if spec.type == TaskType.binary:
                    probs = np.stack([1 - scores, scores], axis=1)
                    picked = (scores >= 0.5).astype(np.int64)
                else:
                    probs, picked = scores, scores.argmax(axis=1)
                columns[task] = np.asarray(spec.classes, dtype=object)[picked]
                for i, c in enumerate(spec.classes):
                    columns[f"{task}/p/{c}"] = probs[:, i].astype(np.float64)
        return pd.DataFrame(columns, index=index)

    def _spec(self, task: str) -> TaskSpec:
        for spec in self.specs:
            if spec.name == task:
                return spec
        raise KeyError(f"the model has no task {task!r}; its tasks are {self.tasks}")

    def _rows(self, inputs: pd.DataFrame | np.ndarray, task: str):
        shape = tuple(self.build["input_shape"])
        if self.space is None:
            rows = np.asarray(inputs, dtype=np.float32)
            if rows.shape[1:] != shape:
                raise DataError(
                    f"the model takes rows of shape {shape}, got {tuple(rows.shape[1:])}"
                )
            return rows
        if not isinstance(inputs, pd.DataFrame):
            raise DataError("the model takes a table of its input columns (a data frame)")
        check_inputs(inputs, self.input_columns(task), self.space.kinds)
        return self.space.transform(task, inputs)

    # saving and loading -----------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write the model to ``folder`` (created; existing files of these names replaced)."""
        folder = Path(folder)
        if not isinstance(self.build["trunk"], str):
            raise ValueError(
                "a model whose trunk is a Python object cannot be saved: name the trunk by "
                "its factory, 'package.module:function', so that loading can build it again"
            )
        folder.mkdir(parents=True, exist_ok=True)
        described = {
            "format": FORMAT,
            "build": self.build,
            "tasks": [_spec_state(s) for s in self.specs],
            "metrics": self.metrics,
        }
        (folder / MODEL_FILE).write_text(json.dumps(described, indent=1, allow_nan=True))
        save_model(self.model, str(folder / WEIGHTS_FILE))
        if self.space is not None:
            (folder / FEATURES_FILE).write_text(json.dumps(self.space.to_state()))
        return folder

    @classmethod
    def load(
        cls, folder: str | Path, device: str = "cpu", trusted: Collection[str] = ()
    ) -> TrainedModel:
        """Read a model that ``save`` wrote. Raises ``ModelFileError`` naming the file when
        anything is missing, malformed or not what ``save`` writes.

        A model whose trunk is a factory of the user's (``"package.module:function"``) runs
        that code to be built, so it loads only when the factory is ``trusted``: named here, or
        in ``MTL_TRUSTED_TRUNKS`` (comma-separated), as ``sweeps predict`` trusts the factory
        its own study file names. Anything else in the folder is data (JSON, safetensors)."""
        folder = Path(folder)
        described = _read_json(folder / MODEL_FILE)
        trunk = (described.get("build") or {}).get("trunk") if isinstance(described, dict) else None
        allowed = {*trusted, *filter(None, os.environ.get("MTL_TRUSTED_TRUNKS", "").split(","))}
        if is_factory_name(trunk) and trunk not in allowed:
            raise ModelFileError(
                f"{folder / MODEL_FILE}: its trunk is code of the user's ({trunk}), which loading "
                "would import and call; load it only if you trust it: "
                f"TrainedModel.load(..., trusted={{{trunk!r}}}), or MTL_TRUSTED_TRUNKS={trunk}"
            )
        try:
            if described.get("format") != FORMAT:
                raise ValueError(
                    f"format {described.get('format')!r} (this version reads {FORMAT})"
                )
            build = dict(described["build"])
            if set(build) - {"trunk_options"} != _BUILD_KEYS:
                raise ValueError(f"build keys {sorted(build)}")
            specs = [_spec_from_state(s) for s in described["tasks"]]
            metrics = dict(described.get("metrics") or {})
            model = build_model(
                str(build["architecture"]),
                tuple(int(d) for d in build["input_shape"]),
                specs,
                int(build["hidden_size"]),
                int(build["depth"]),
                str(build["activation"]),
                float(build["dropout"]),
                trunk=str(build["trunk"]),
                trunk_options=dict(build.get("trunk_options") or {}),
                **dict(build["settings"]),
            )
        except FactoryError as exc:
            raise ModelFileError(
                f"{folder / MODEL_FILE}: its trunk {build['trunk']} cannot be built ({exc}); "
                "install its package or put its folder on PYTHONPATH"
            ) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(f"{folder / MODEL_FILE}: not a saved model ({exc})") from None
        try:
            missing, unexpected = load_model(model, str(folder / WEIGHTS_FILE), strict=False)
        except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
            raise ModelFileError(
                f"{folder / WEIGHTS_FILE}: not the model's weights ({exc})"
            ) from None
        if missing or unexpected:
            raise ModelFileError(
                f"{folder / WEIGHTS_FILE}: the weights do not fit the model "
                f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
            )
        space = None
        if (folder / FEATURES_FILE).exists():
            try:
                space = FeatureSpace.from_state(_read_json(folder / FEATURES_FILE))
            except (ValueError, TypeError) as exc:
                raise ModelFileError(f"{folder / FEATURES_FILE}: {exc}") from None
            if space.width != int(np.prod(build["input_shape"])):
                raise ModelFileError(
                    f"{folder / FEATURES_FILE}: {space.width} features for a model of "
                    f"{build['input_shape']} inputs"
                )
        model.to(resolve_device(device)).eval()
        return cls(model, build, specs, space, metrics)


def check_inputs(frame: pd.DataFrame, columns: Sequence[str], kinds: Mapping[str, str]) -> None:
    """Refuse a frame that lacks a column the model reads, or holds a value that is not a
    number in a numeric column; the error names the column (and the row, from 1)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"no column {missing[0]!r}; the model reads {list(columns)}, the input has "
            f"{list(map(str, frame.columns))[:20]}",
            column=missing[0],
        )
    for column in (c for c in columns if kinds.get(c) == "numeric"):
        values = frame[column]
        bad = non_numbers(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"column {column!r}, row {row + 1}: {values.iloc[row]!r} is not a number "
                "(the model was trained on it as a numeric column)",
                column=column,
                row=row + 1,
            )


def _towers(config: TrainConfig) -> dict[str, int]:
    """The heads' towers, kept only when there are any: a model saved before they existed
    (linear heads) reads the same."""
    if not config.head_layers:
        return {}
    return {"head_layers": int(config.head_layers), "head_hidden": int(config.head_hidden)}


def _params(entry, config: TrainConfig):
    values = config.method_settings()
    return [(p, values.get(p.name, p.default)) for p in entry.params]


def _spec_state(spec: TaskSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "type": str(spec.type),
        "metric": spec.metric,
        "classes": list(spec.classes),
        "target_mean": spec.target_mean,
        "target_std": spec.target_std,
    }


def _spec_from_state(state: Mapping[str, Any]) -> TaskSpec:
    extra = set(state) - {"name", "type", "metric", "classes", "target_mean", "target_std"}
    if extra:
        raise ValueError(f"unknown task keys {sorted(extra)}")
    kind = TaskType(state["type"])
    metric = str(state["metric"])
    if metric not in task_types.allowed_metrics(kind):
        raise ValueError(f"metric {metric!r} for a {kind} task")
    mean, std = float(state["target_mean"]), float(state["target_std"])
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        raise ValueError("a regression target's scaling is not finite")
    return TaskSpec(str(state["name"]), kind, metric, tuple(map(str, state["classes"])), mean, std)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing (not a saved model folder)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ModelFileError(f"{path}: not a saved model (a JSON object was expected)")
    return value


__all__ = ["ModelFileError", "TrainedModel", "check_inputs"]
