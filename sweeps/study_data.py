"""A study's data: every task's file read, labelled, split and featurized, once per process.

The feature space is fitted over all the study's tasks (training rows only), so a task's
features do not depend on which other tasks a trial draws: that is what lets a single-task
baseline be reused across task combinations.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mtl_core.data.arrays import tasks_from_arrays
from mtl_core.data.builtin import DEFAULTS as BUILTIN_OPTIONS
from mtl_core.data.builtin import load_builtin
from mtl_core.data.features import FeatureSpace, TextFeatures
from mtl_core.data.prepare import TaskData, TaskFrame, prepare_tasks
from mtl_core.data.readers import DataError, read_arrays, read_table
from sweeps.errors import StudyError
from sweeps.schema import SplitFiles, StudySpec, TaskConfig, TextFeatureConfig


@dataclass
class StudyData:
    tasks: dict[str, TaskData]
    space: FeatureSpace
    fingerprints: dict[str, str]  # task -> hash of its files and settings
    # two rows of every raw input column (a recorded model's input example); None for arrays
    example: pd.DataFrame | None = None

    def subset(self, names: list[str]) -> list[TaskData]:
        return [self.tasks[n] for n in names]

    def coverage(self, names: list[str]) -> list[tuple[str, float, int]]:
        """Metrics of how many rows each task has and how many carry its label, per split:
        ``data/TASK/rows/SPLIT`` and ``data/TASK/labelled_rows/SPLIT``."""
        out: list[tuple[str, float, int]] = []
        for name in names:
            task = self.tasks[name]
            for split in ("train", "valid", "test"):
                out.append((f"data/{name}/rows/{split}", float(task.rows(split)), 0))
                out.append(
                    (f"data/{name}/labelled_rows/{split}", float(task.labelled_rows(split)), 0)
                )
        return out


_CACHE: OrderedDict[str, StudyData] = OrderedDict()  # prepared data, by content and settings
_SOURCES: OrderedDict[tuple, object] = OrderedDict()  # tables and arrays as read, by content
CACHE_SIZE = 8


def load_study_data(spec: StudySpec) -> StudyData:
    """Read and prepare every task; raises ``StudyError`` naming the task field and file.

    Files are read and featurized once per process: the result is kept under a key made of
    the files' contents (not their names or times, so an edited file is read again) and the
    settings that shape the data. Several feature settings of one study (searched
    ``features.*``) share the tables as read."""
    contents: dict[Path, str] = {}
    frames: dict[str, TaskFrame] = {}
    arrays: dict[str, dict] = {}
    fingerprints: dict[str, str] = {}
    name = ""
    try:
        key = _cache_key(spec, contents)
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        for name in spec.task_names:
            task = spec.tasks[name]
            if task.is_array:
                arrays[name], fingerprints[name] = _array_source(spec, name, task, contents)
            else:
                frames[name], fingerprints[name] = _task_frame(spec, name, task, contents)
    except OSError as exc:  # a name too long, a file the system refuses to open
        field = f"tasks.{name}.path" if name else "tasks"
        raise StudyError(f"{field}: {exc.filename or ''} cannot be read: {exc.strerror}") from None
    text = {column: TextFeatures(**cfg.model_dump()) for column, cfg in spec.features.items()}
    try:
        prepared, space = prepare_tasks(frames, text, seed=spec.seed)
    except DataError as exc:
        raise StudyError(_locate(spec, exc)) from None
    prepared.update(_array_tasks(spec, arrays))
    data = StudyData(
        {n: prepared[n] for n in spec.task_names}, space, fingerprints, _example(frames)
    )
    _remember(_CACHE, key, data)
    return data


def data_for(
    spec: StudySpec,
    features: dict[str, TextFeatureConfig],
    loaded: StudyData | None = None,
    options: dict[str, Any] | None = None,
) -> StudyData:
    """The study's data with a trial's feature settings and built-in source options (which
    differ from the study's when it searched ``features.*`` or ``options.*``); ``loaded`` is
    the study's own data, returned when they match."""
    if loaded is not None and features == spec.features and not options:
        return loaded
    tasks = dict(spec.tasks)
    for name, task in tasks.items():
        takes = BUILTIN_OPTIONS.get(task.builtin or "", {})
        mine = {k: v for k, v in (options or {}).items() if k in takes}
        if mine:
            tasks[name] = task.model_copy(update={"options": {**(task.options or {}), **mine}})
    return load_study_data(spec.model_copy(update={"features": features, "tasks": tasks}))


def _example(frames: dict[str, TaskFrame], rows: int = 2) -> pd.DataFrame | None:
    """The first rows of every input column, each from the first task that reads it."""
    columns: dict[str, list] = {}
    for task in frames.values():
        frame = task.frame if task.frame is not None else task.splits["train"]
        for column in task.input_columns:
            if column not in columns:
                columns[column] = frame[column].iloc[:rows].tolist()
    if not columns:
        return None
    n = min(len(v) for v in columns.values())
    return pd.DataFrame({c: v[:n] for c, v in columns.items()})


def _remember(cache: OrderedDict, key, value) -> None:
    cache[key] = value
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)


def _task_frame(
    spec: StudySpec, name: str, task: TaskConfig, contents: dict
) -> tuple[TaskFrame, str]:
    digest = hashlib.sha256(task.model_dump_json().encode())
    common = dict(
        inputs=task.inputs,
        target=task.target,
        type=task.type,
        metric=task.metric,
        label_map=task.label_map,
        partial_labels=task.partial_labels,
    )
    if isinstance(task.split, SplitFiles):
        splits = {}
        for split in ("train", "valid", "test"):
            where = getattr(task.split, split)
            if isinstance(where, float):
                continue  # a fraction of the training file
            field = f"tasks.{name}.split.{split}"
            splits[split] = _read(field, spec.resolve(where), task, digest, contents, split)
        valid = task.split.valid if isinstance(task.split.valid, float) else 0.0
        return TaskFrame(splits=splits, valid=valid, **common), digest.hexdigest()[:16]
    if task.builtin is not None:
        frame = _builtin(name, task, digest)
    else:
        frame = _read(f"tasks.{name}.path", spec.resolve(task.path), task, digest, contents)
    fractions = dict(valid=task.split.valid, test=task.split.test)
    return TaskFrame(frame=frame, **fractions, **common), digest.hexdigest()[:16]


def _read(
    field: str, path: Path, task: TaskConfig, digest, contents: dict, split: str | None = None
) -> object:
    if path.is_dir():
        raise StudyError(f"{field}: {path} is a folder; a table is one file")
    if not path.is_file():
        raise StudyError(f"{field}: no such file {path}")
    options = (task.format, task.header, tuple(task.columns or ()))
    options += (tuple(task.missing or ()), task.skip_rows_of(split))
    key = ("file", _content(path, contents), options)
    if key not in _SOURCES:
        try:
            frame = read_table(
                path, task.format, task.header, task.columns, task.missing, options[-1]
            )
        except DataError as exc:
            raise StudyError(f"{field}: {exc}") from None
        _remember(_SOURCES, key, frame)
    digest.update(key[1].encode())
    return _SOURCES[key]


def _content(path: Path, contents: dict) -> str:
    """The sha256 of a file, or of a folder's .npy files (once per load)."""
    if path not in contents:
        digest = hashlib.sha256()
        files = sorted(path.glob("*.npy")) if path.is_dir() else [path]
        for file in files:
            digest.update(file.name.encode())
            with file.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        contents[path] = digest.hexdigest()
    return contents[path]


def _builtin(name: str, task: TaskConfig, digest) -> object:
    key = ("builtin", task.builtin, tuple(sorted((task.options or {}).items())))
    if key not in _SOURCES:
        try:
            _remember(_SOURCES, key, load_builtin(task.builtin or "", task.options))
        except DataError as exc:
            raise StudyError(f"tasks.{name}.path: {exc}") from None
    digest.update(repr(key).encode())
    return _SOURCES[key]


def _array_source(spec: StudySpec, name: str, task: TaskConfig, contents: dict):
    """The named arrays of an .npz file or a folder of .npy files (read without pickle), or
    of builtin:digits."""
    digest = hashlib.sha256(task.model_dump_json().encode())
    if task.builtin is not None:
        source = _builtin(name, task, digest)
        where = task.path
    else:
        path = spec.resolve(task.path)
        where = str(path)
        if not path.exists():
            raise StudyError(f"tasks.{name}.path: no such file or folder {path}")
        key = ("arrays", _content(path, contents))
        if key not in _SOURCES:
            try:
                _remember(_SOURCES, key, read_arrays(path))
            except DataError as exc:
                raise StudyError(f"tasks.{name}.path: {exc}") from None
        digest.update(key[1].encode())
        source = _SOURCES[key]
    for field, key in (("inputs", task.inputs), ("target", task.target)):
        if key not in source:
            raise StudyError(
                f"tasks.{name}.{field}: {where} has no array {key!r}; it holds {sorted(source)}"
            )
    return source, digest.hexdigest()[:16]


def _array_tasks(spec: StudySpec, arrays: dict[str, dict]) -> dict[str, TaskData]:
    """Tasks over the same arrays (same source, inputs and fractions) are built together, so
    they share rows and input arrays."""
    groups: dict[tuple, list[str]] = {}
    for name, source in arrays.items():
        task = spec.tasks[name]
        key = (id(source), task.inputs, task.split.valid, task.split.test)
        groups.setdefault(key, []).append(name)
    out: dict[str, TaskData] = {}
    for (_, inputs, valid, test), names in groups.items():
        source = arrays[names[0]]
        targets = {n: (source[spec.tasks[n].target], spec.tasks[n].type) for n in names}
        metrics = {n: spec.tasks[n].metric for n in names}
        try:
            out.update(tasks_from_arrays(source[inputs], targets, valid, test, spec.seed, metrics))
        except (DataError, ValueError) as exc:
            raise StudyError(f"tasks.{names[0]}: {spec.tasks[names[0]].path}: {exc}") from None
    return out


def _locate(spec: StudySpec, exc: DataError) -> str:
    """A data error as the study field of its task and the file it concerns."""
    if exc.task not in spec.tasks:
        return str(exc)
    task = spec.tasks[exc.task]
    source = task.path
    if isinstance(task.split, SplitFiles):
        source = getattr(task.split, exc.split or "train")
        if isinstance(source, float):  # validation rows carved from the training file
            source = task.split.train
    shown = source if task.builtin is not None else spec.resolve(source).name
    return f"tasks.{exc.task}: {shown}: {exc.reason}"


def _cache_key(spec: StudySpec, contents: dict) -> str:
    files = []
    for task in spec.tasks.values():
        if task.builtin is not None:
            continue
        paths = [task.path]
        if isinstance(task.split, SplitFiles):
            paths = [p for p in (task.split.train, task.split.valid, task.split.test)]
        for p in paths:
            if isinstance(p, str) and spec.resolve(p).exists():
                files.append(_content(spec.resolve(p), contents))
            else:
                files.append(repr(p))
    payload = spec.model_dump_json(include={"seed", "tasks", "features"}) + repr(files)
    return hashlib.sha256(payload.encode()).hexdigest()
