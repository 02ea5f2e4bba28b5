"""The study file (``study.yaml``): read, validate, resolve paths.

``load_spec(path)`` returns a ``StudySpec`` (``sweeps.schema``) or raises ``StudyError`` whose
lines each name the field as a dotted path (with the YAML line where one is known) and what is
allowed. It reads no data file; ``sweeps.study_data`` does that.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from mtl_core.trunk_factory import FactoryError, add_folder, arguments, is_factory_name, resolve
from sweeps.errors import StudyError
from sweeps.schema import (
    METRICS,
    TASK_NAME,
    BaselinesConfig,
    ChoicesParam,
    ConfirmConfig,
    EarlyStopping,
    ModelConfig,
    RangeParam,
    SearchConfig,
    SplitFiles,
    SplitFractions,
    Strict,
    StudySpec,
    SubsetRule,
    SubsetsParam,
    TaskConfig,
    TaskTypeName,
    TextFeatureConfig,
    TrainingConfig,
)
from sweeps.space import check_space
from sweeps.sqlite_stores import sqlite_file

__all__ = [
    "TASK_NAME",
    "TaskTypeName",
    "METRICS",
    "Strict",
    "SplitFractions",
    "SplitFiles",
    "TaskConfig",
    "TextFeatureConfig",
    "ModelConfig",
    "EarlyStopping",
    "TrainingConfig",
    "BaselinesConfig",
    "RangeParam",
    "ChoicesParam",
    "SubsetRule",
    "SubsetsParam",
    "ConfirmConfig",
    "SearchConfig",
    "StudySpec",
    "check_spec",
    "load_spec",
]


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study file; every problem names its field (and YAML line)."""
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"{path}: no such study file")
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
        root = yaml.compose(text)
    except UnicodeDecodeError as exc:
        raise StudyError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise StudyError(f"{where}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise StudyError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise StudyError(f"{path}: the study file must be a mapping of keys (name, tasks, ...)")
    _check_yaml(path, root)
    return _validated(raw, path, root)


def spec_from_mapping(raw: Any, folder: str | Path | None = None) -> StudySpec:
    """A study from a mapping, as the Python API takes it (``Study({...})``): checked as a
    study file would be, its relative paths (data, workdir) anchored to ``folder`` (default:
    the current folder). Problems name their field, as in a file, after ``<mapping>``."""
    if not isinstance(raw, Mapping):
        raise StudyError(
            f"a study is a mapping of keys (name, tasks, ...), not {type(raw).__name__}"
        )
    folder = Path(folder) if folder is not None else Path.cwd()
    if not folder.is_dir():
        raise StudyError(f"folder: no such folder {folder}")
    return _validated(dict(raw), folder / "<mapping>", None)


def _validated(raw: dict, path: Path, root: yaml.Node | None) -> StudySpec:
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as exc:
        raise StudyError([_describe(path, root, err) for err in exc.errors()]) from None
    spec.source = path.resolve()  # a mapping's: <folder>/<mapping>, so its folder anchors paths
    if trunk_factories(spec):  # a user trunk's module file beside the study is found from here
        add_folder(spec.source.parent)
    problems = [f"{path}{_line(root, loc)}: {msg}" for loc, msg in check_spec(spec)]
    if problems:
        raise StudyError(problems)
    return spec


MAX_YAML_VALUES = 100_000  # values aliases may add; a 1 KB file can add billions


def _check_yaml(path: Path, root: yaml.Node | None) -> None:
    """What YAML allows and a study file must not do: a key given twice in one mapping (the
    second silently replaced the first: two ``training:`` blocks) and aliases that expand to
    more values than any study holds (a 1.4 KB alias bomb ran error reporting out of memory).
    Both are read off the composed nodes, each node once."""
    problems: list[str] = []
    sizes: dict[int, int] = {}
    loader = yaml.SafeLoader("")  # for its constructor: keys compared as YAML reads them

    def key_of(node: yaml.ScalarNode) -> Any:
        """The key as the loaded mapping holds it (`yes`, `true` and `True` are one key;
        `1` and `1.0` too), not its text."""
        try:
            key = loader.construct_object(node)
            hash(key)
            return key
        except Exception:  # a key YAML itself refuses: its own error says so
            return node.value

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # a node that refers to itself counts once
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    read = key_of(key)
                    if read in seen and len(problems) < 5:
                        problems.append(
                            f"{path}:{key.start_mark.line + 1}: duplicate key {key.value[:80]!r}"
                            f" (first at line {seen[read]}, read as the same key); a key may "
                            "appear once"
                        )
                    seen.setdefault(read, key.start_mark.line + 1)
                total += size(key) + size(value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        sizes[id(node)] = min(total, 10 * MAX_YAML_VALUES)
        return sizes[id(node)]

    if root is not None and size(root) - len(sizes) > MAX_YAML_VALUES:  # what aliases add
        problems.append(
            f"{path}: expands to more than {MAX_YAML_VALUES:,} values through YAML aliases;"
            " a study file is far smaller (write the values out, or use fewer aliases)"
        )
    if problems:
        raise StudyError(problems)


def check_spec(spec: StudySpec) -> list[tuple[tuple, str]]:
    """Cross-field checks pydantic cannot express field by field: (location, message) pairs."""
    problems: list[tuple[tuple, str]] = []
    names = set(spec.tasks)
    for task in spec.training.weights:
        if task not in names:
            tasks = ", ".join(sorted(names))
            problems.append(
                (
                    ("training", "weights", task),
                    f"training.weights.{task}: no task {task!r}; tasks are {tasks}",
                )
            )
    for column in spec.features:
        if not any(column in t.input_columns for t in spec.tasks.values()):
            problems.append(
                (
                    ("features", column),
                    f"features.{column}: no task reads a column {column!r} as input",
                )
            )
        if not _PARAM_NAME.fullmatch(column) or posixpath.normpath(f"x/{column}/y") != (
            f"x/{column}/y"
        ):
            problems.append(
                (
                    ("features", column),
                    f"features.{column[:80]!r}: MLflow records a column's settings as params "
                    f"named features.COLUMN.SETTING, and a param name may only hold letters, "
                    "digits and _ - . : / and spaces, without empty or '.'/'..' parts; rename "
                    "the column (and read it under the new name)",
                )
            )
    search = spec.search
    if search.multi_objective and "pruner" in search.model_fields_set and search.pruner != "none":
        problems.append(
            (
                ("search", "pruner"),
                f"search.pruner: {search.pruner!r} cannot be used with `objective: per_task`: "
                "Optuna cannot prune multi-objective trials; set `pruner: none` (or leave it out)",
            )
        )
    if search.multi_objective and "tasks" in search.space:
        problems.append(
            (
                ("search", "objective"),
                "search.objective: `per_task` needs the same tasks in every trial (one objective "
                "per task); remove `tasks` from search.space or use `objective: delta_m`",
            )
        )
    if search.multi_objective and len(spec.tasks) < 2:
        problems.append(
            (("search", "objective"), "search.objective: `per_task` needs at least two tasks")
        )
    workdir = spec.workdir_path
    try:
        if workdir.exists() and not workdir.is_dir():
            problems.append((("workdir",), f"workdir: {workdir} is a file, not a folder"))
        elif not workdir.exists() and _nearest_folder(workdir) is None:
            problems.append(
                (("workdir",), f"workdir: {workdir} cannot be made (a file is in its path)")
            )
    except OSError as exc:  # a name too long, a path through a file the system refuses
        problems.append((("workdir",), f"workdir: {workdir} cannot be used: {exc.strerror}"))
    for field, uri in (("storage", spec.storage), ("tracking_uri", spec.tracking_uri)):
        file = sqlite_file(spec.optuna_storage if field == "storage" else spec.tracking)
        if uri and file is not None and not file.parent.is_dir():
            problems.append(
                (
                    (field,),
                    f"{field}: the folder of the SQLite file {file} does not exist; make it, "
                    "or name a file in an existing folder (a relative path is read from the "
                    "study file's folder)",
                )
            )
    problems += check_space(spec)
    return problems


_PARAM_NAME = re.compile(r"[/\w.\- :]+")  # MLflow's rule for param names (not Windows)


def check_writable(spec: StudySpec) -> list[str]:
    """What `run` and `worker` (and `validate`, which answers for them) need before anything
    is written: a workdir, or the folder it would be made in, that this user can write."""
    workdir = spec.workdir_path
    folder = workdir if workdir.is_dir() else _nearest_folder(workdir)
    where = f"{spec.source}: " if spec.source else ""
    if folder is not None and not os.access(folder, os.W_OK):
        whose = "it" if folder == workdir else f"the folder it would be made in, {folder},"
        return [
            f"{where}workdir: {workdir} cannot be written ({whose} is read-only for this "
            "user); the study's stores, artifacts and report go there: set `workdir` to a "
            "writable folder"
        ]
    return []


def check_device(spec: StudySpec) -> list[str]:
    """`training.device: cuda` where torch sees no CUDA GPU: every trial failed on it while
    `validate` passed. Only the commands that train ask (`status` of a study trained on a GPU
    reads on a laptop)."""
    if not spec.training.device.startswith("cuda"):
        return []
    import torch  # only for a study that asks for CUDA: light commands stay light

    if torch.cuda.is_available():
        return []
    where = f"{spec.source}: " if spec.source else ""
    build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
    return [
        f"{where}training.device: 'cuda' is asked for, but torch {torch.__version__} "
        f"({build}) sees no CUDA GPU on this machine; use `auto` (a GPU where there is one, "
        "else the CPU) or `cpu`"
    ]


def trunk_factories(spec: StudySpec) -> list[str]:
    """The factories of user trunks the study names (``model.trunk``, and choices of it)."""
    names = [spec.model.trunk]
    entry = spec.search.space.get("model.trunk")
    names += list(getattr(entry, "choices", None) or [])
    return [n for n in dict.fromkeys(names) if is_factory_name(n)]


def check_trunk(spec: StudySpec) -> list[str]:
    """A user trunk's factory, found as every process that trains will find it (an installed
    package, or a module file in the study file's folder) and its options checked against its
    signature, before anything is written. Importing it runs the user's module."""
    where = f"{spec.source}: " if spec.source else ""
    problems = []
    for name in trunk_factories(spec):
        try:
            arguments(resolve(name, spec.source.parent), spec.model.trunk_options)
        except FactoryError as exc:
            problems.append(
                f"{where}model.trunk.factory: {name}: {exc}; a factory is "
                "'package.module:function' from an installed package or a module file in the "
                "study file's folder"
            )
    return problems


def _nearest_folder(path: Path) -> Path | None:
    """The deepest existing folder above ``path``, or None if a file stands in the way."""
    for parent in path.parents:
        if parent.exists():
            return parent if parent.is_dir() else None
    return None


def _describe(path: Path, root: yaml.Node | None, err: dict[str, Any]) -> str:
    loc = tuple(part for part in err["loc"] if not _is_union_tag(part))
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        msg = f"unknown key{'; allowed: ' + ', '.join(allowed) if allowed else ''}"
    elif kind == "missing":
        msg = "required but missing"
    elif kind == "literal_error":
        msg = f"{msg} (got {err.get('input')!r}; `sweeps methods` describes each)"
    elif kind == "predicate_failed" and "is_factory_name" in msg:
        msg = (
            f"nor a factory of your own trunk, 'package.module:function' (got {err.get('input')!r})"
        )
    elif kind in ("value_error", "assertion_error"):
        msg = msg.removeprefix("Value error, ")
    elif "input" in err and not isinstance(err["input"], dict | list):
        msg = f"{msg} (got {err['input']!r})"
    return f"{path}{_line(root, loc)}: {dotted}: {msg}"


def _is_union_tag(part: Any) -> bool:
    """pydantic names the union member it tried in the location; users never wrote it."""
    if not isinstance(part, str):
        return False
    return part in _UNION_TAGS or part.startswith(("list[", "dict[", "function-", "literal["))


_UNION_TAGS = {
    "RangeParam",
    "ChoicesParam",
    "SubsetsParam",
    "SplitFractions",
    "SplitFiles",
    "str",
    "int",
    "float",
    "bool",
}


def _allowed_keys(loc: tuple) -> list[str]:
    """The keys a mapping at ``loc`` accepts, for "unknown key" messages."""
    model: Any = StudySpec
    parts, i = list(loc), 0
    while i < len(parts):
        fields = getattr(model, "model_fields", None)
        if fields is None or str(parts[i]) not in fields:
            return []
        annotation = fields[str(parts[i])].annotation
        model = _model_in(annotation)
        if model is None:
            return []
        i += 2 if get_origin(annotation) is dict else 1  # a dict's key is the user's name
    return [k for k in model.model_fields if k != "source"]


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _line(root: yaml.Node | None, loc: tuple) -> str:
    """``:LINE`` of the deepest YAML node along ``loc`` (the parent's, for a missing key)."""
    node, line = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line, pair[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line
        else:
            break
    return f":{line + 1}" if line is not None else ""
