"""A study's data: every task's file read, labelled, split and featurized, once per process.

The feature space is fitted over all the study's tasks (training rows only), so a task's
features do not depend on which other tasks a trial draws: that is what lets a single-task
baseline be reused across task combinations.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from mtl_core.data.features import FeatureSpace, TextFeatures
from mtl_core.data.prepare import TaskData, TaskFrame, prepare_tasks
from mtl_core.data.readers import DataError, read_table
from sweeps.errors import StudyError
from sweeps.spec import SplitFiles, StudySpec, TaskConfig


@dataclass
class StudyData:
    tasks: dict[str, TaskData]
    space: FeatureSpace
    fingerprints: dict[str, str]  # task -> hash of its files and settings

    def subset(self, names: list[str]) -> list[TaskData]:
        return [self.tasks[n] for n in names]


_CACHE: dict[str, StudyData] = {}


def load_study_data(spec: StudySpec) -> StudyData:
    """Read and prepare every task; raises ``StudyError`` naming the task field and file."""
    key = _cache_key(spec)
    if key in _CACHE:
        return _CACHE[key]
    frames: dict[str, TaskFrame] = {}
    arrays: dict[str, dict] = {}
    fingerprints: dict[str, str] = {}
    sources: dict[tuple, object] = {}  # tasks reading one source get one object: shared rows
    for name in spec.task_names:
        task = spec.tasks[name]
        if task.is_array:
            arrays[name], fingerprints[name] = _array_source(spec, name, task, sources)
        else:
            frames[name], fingerprints[name] = _task_frame(spec, name, task, sources)
    text = {column: TextFeatures(**cfg.model_dump()) for column, cfg in spec.features.items()}
    try:
        prepared, space = prepare_tasks(frames, text, seed=spec.seed)
    except DataError as exc:
        raise StudyError(_locate(spec, str(exc))) from None
    prepared.update(_array_tasks(spec, arrays))
    data = StudyData({n: prepared[n] for n in spec.task_names}, space, fingerprints)
    _CACHE[key] = data
    return data


def _task_frame(
    spec: StudySpec, name: str, task: TaskConfig, sources: dict
) -> tuple[TaskFrame, str]:
    digest = hashlib.sha256(task.model_dump_json().encode())
    common = dict(
        inputs=task.inputs,
        target=task.target,
        type=task.type,
        metric=task.metric,
        label_map=task.label_map,
    )
    if isinstance(task.split, SplitFiles):
        splits = {}
        for split in ("train", "valid", "test"):
            path = spec.resolve(getattr(task.split, split))
            splits[split] = _read(f"tasks.{name}.split.{split}", path, task, digest, sources)
        return TaskFrame(splits=splits, **common), digest.hexdigest()[:16]
    if task.builtin is not None:
        frame = _builtin(name, task, digest, sources)
    else:
        frame = _read(f"tasks.{name}.path", spec.resolve(task.path), task, digest, sources)
    fractions = dict(valid=task.split.valid, test=task.split.test)
    return TaskFrame(frame=frame, **fractions, **common), digest.hexdigest()[:16]


def _read(field: str, path: Path, task: TaskConfig, digest, sources: dict) -> object:
    if not path.is_file():
        raise StudyError(f"{field}: no such file {path}")
    key = ("file", str(path), task.format, task.header, tuple(task.columns or ()))
    if key not in sources:
        try:
            sources[key] = read_table(path, task.format, task.header, task.columns)
        except DataError as exc:
            raise StudyError(f"{field}: {exc}") from None
    digest.update(path.read_bytes())
    return sources[key]


def _builtin(name: str, task: TaskConfig, digest, sources: dict) -> object:
    from mtl_core.data.builtin import load_builtin

    key = ("builtin", task.builtin, tuple(sorted((task.options or {}).items())))
    if key not in sources:
        try:
            sources[key] = load_builtin(task.builtin or "", task.options)
        except DataError as exc:
            raise StudyError(f"tasks.{name}.path: {exc}") from None
    digest.update(repr(key).encode())
    return sources[key]


def _array_source(spec: StudySpec, name: str, task: TaskConfig, sources: dict):
    """The named arrays of an .npz file (read without pickle) or of builtin:digits."""
    import numpy as np

    digest = hashlib.sha256(task.model_dump_json().encode())
    if task.builtin is not None:
        source = _builtin(name, task, digest, sources)
        where = task.path
    else:
        path = spec.resolve(task.path)
        where = str(path)
        if not path.is_file():
            raise StudyError(f"tasks.{name}.path: no such file {path}")
        key = ("npz", str(path))
        if key not in sources:
            try:
                with np.load(path, allow_pickle=False) as found:
                    sources[key] = {k: found[k] for k in found.files}
            except (OSError, ValueError) as exc:
                raise StudyError(
                    f"tasks.{name}.path: {path}: cannot be read as .npz: {exc}"
                ) from None
        digest.update(path.read_bytes())
        source = sources[key]
    for field, key in (("inputs", task.inputs), ("target", task.target)):
        if key not in source:
            raise StudyError(
                f"tasks.{name}.{field}: {where} has no array {key!r}; it holds {sorted(source)}"
            )
    return source, digest.hexdigest()[:16]


def _array_tasks(spec: StudySpec, arrays: dict[str, dict]) -> dict[str, TaskData]:
    """Tasks over the same arrays (same source, inputs and fractions) are built together, so
    they share rows and input arrays."""
    from mtl_core.data.arrays import tasks_from_arrays

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


def _locate(spec: StudySpec, message: str) -> str:
    """Prefix a data error with the task it concerns, as a dotted field."""
    for name in spec.task_names:
        prefix = f"task {name!r}: "
        if message.startswith(prefix):
            return f"tasks.{name}: {spec.resolve(spec.tasks[name].path).name}: {message[len(prefix) :]}"
    return message


def _cache_key(spec: StudySpec) -> str:
    files = []
    for task in spec.tasks.values():
        paths = (
            [task.path]
            if not isinstance(task.split, SplitFiles)
            else [task.split.train, task.split.valid, task.split.test]
        )
        for p in paths:
            resolved = spec.resolve(p)
            stat = resolved.stat() if resolved.is_file() else None
            files.append(
                (str(resolved), stat.st_mtime_ns if stat else None, stat.st_size if stat else None)
            )
    payload = spec.model_dump_json(include={"seed", "tasks", "features"}) + repr(files)
    return hashlib.sha256(payload.encode()).hexdigest()
