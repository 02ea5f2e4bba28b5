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
    fingerprints: dict[str, str] = {}
    for name in spec.task_names:
        task = spec.tasks[name]
        frames[name], fingerprints[name] = _task_frame(spec, name, task)
    text = {column: TextFeatures(**cfg.model_dump()) for column, cfg in spec.features.items()}
    try:
        prepared, space = prepare_tasks(frames, text, seed=spec.seed)
    except DataError as exc:
        raise StudyError(_locate(spec, str(exc))) from None
    data = StudyData(prepared, space, fingerprints)
    _CACHE[key] = data
    return data


def _task_frame(spec: StudySpec, name: str, task: TaskConfig) -> tuple[TaskFrame, str]:
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
            splits[split] = _read(f"tasks.{name}.split.{split}", path, task, digest)
        return TaskFrame(splits=splits, **common), digest.hexdigest()[:16]
    frame = _read(f"tasks.{name}.path", spec.resolve(task.path), task, digest)
    fractions = dict(valid=task.split.valid, test=task.split.test)
    return TaskFrame(frame=frame, **fractions, **common), digest.hexdigest()[:16]


def _read(field: str, path: Path, task: TaskConfig, digest) -> object:
    if not path.is_file():
        raise StudyError(f"{field}: no such file {path}")
    try:
        frame = read_table(path, task.format, task.header, task.columns)
    except DataError as exc:
        raise StudyError(f"{field}: {exc}") from None
    digest.update(path.read_bytes())
    return frame


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
