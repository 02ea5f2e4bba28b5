"""A W&B sweep file as a study (``sweeps import-wandb``): what carries over is translated, and
every key that cannot is named with the reason, never dropped in silence.

W&B's sweep configuration (https://docs.wandb.ai/guides/sweeps/sweep-config-keys) becomes:

- ``method``: ``grid`` → ``search.sampler: grid``, ``random`` → ``random``, ``bayes`` (a
  Gaussian process) → ``gp`` (Optuna's Gaussian-process sampler);
- ``parameters``: each under its dotted study name (``training.lr``); the program arguments
  people name most (``lr``, ``learning_rate``, ``batch_size``, ``epochs``, ``hidden_size``,
  ``dropout``, ``optimizer``, ...) are mapped to theirs. ``value`` fixes the setting;
  ``values`` searches those choices; ``min``/``max`` a range (integers when both are), with
  ``distribution`` ``uniform``, ``int_uniform``, ``q_uniform`` (``step`` = ``q``),
  ``log_uniform_values`` (a log range) or ``log_uniform`` (bounds given as natural logs);
- ``metric``: the study's objective is always the validation Δm against single-task
  baselines, maximised; a metric named after one of the tasks' metrics (``val_f1``,
  ``valid/accuracy``) sets each task's ``metric``;
- ``early_terminate``: ``hyperband`` → ``search.pruner: hyperband``, ``min_iter`` → the
  pruner's warm-up (``min_iter - 1`` epochs never pruned), ``max_iter`` → ``training.epochs``
  when the file sets none; ``eta`` other than 3 cannot be carried (the pruner's factor is 3);
- ``run_cap`` → ``search.n_trials``; ``name`` → the study's ``name``, ``description`` kept as a
  YAML comment.

The tasks come from the ``--tasks`` file: a study file's sections (``tasks`` and any of
``features``, ``model``, ``training``, ...), or a mapping of tasks alone; its relative data
paths are rewritten relative to the study written.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mtl_core.tasks import allowed_metrics
from sweeps.errors import StudyError
from sweeps.space import setting
from sweeps.spec import _check_yaml, spec_from_mapping
from sweeps.table_files import write_text_whole

SAMPLER = {"grid": "grid", "random": "random", "bayes": "gp"}
ALIASES = {
    "lr": "training.lr",
    "learning_rate": "training.lr",
    "learning-rate": "training.lr",
    "batch_size": "training.batch_size",
    "batch-size": "training.batch_size",
    "epochs": "training.epochs",
    "optimizer": "training.optimizer",
    "hidden_size": "model.hidden_size",
    "hidden": "model.hidden_size",
    "width": "model.hidden_size",
    "dropout": "model.dropout",
    "depth": "model.depth",
    "layers": "model.depth",
    "num_layers": "model.depth",
    "n_layers": "model.depth",
    "activation": "model.activation",
    "architecture": "model.architecture",
    "schedule": "training.schedule",
    "weighting": "training.weighting",
}
METRIC_PREFIXES = ("validation_", "valid_", "val_", "validation/", "valid/", "val/", "eval_")
RANGE_DISTRIBUTIONS = ("uniform", "int_uniform", "q_uniform", "log_uniform_values", "log_uniform")
IGNORED = {"program", "command", "project", "entity", "controller", "imports", "job"}


def study_key(name: str) -> str | None:
    """The study's dotted name for a W&B parameter, or None when it names no setting."""
    key = ALIASES.get(name, name)
    return key if setting(key) is not None else None


def translate(
    sweep: Mapping[str, Any], base: Mapping[str, Any], metrics: set[str]
) -> tuple[dict[str, Any], list[str]]:
    """(the study mapping, the keys not carried over with why). ``base``: the study's sections
    from the tasks file; ``metrics``: the metric names its tasks can use."""
    study: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in base.items()}
    search: dict[str, Any] = dict(study.get("search") or {})
    space: dict[str, Any] = dict(search.get("space") or {})
    lost: list[str] = []
    if "name" in sweep:
        study["name"] = _name(str(sweep["name"]))
    method = sweep.get("method")
    if method is None:
        lost.append("method: missing; W&B requires it (the study keeps its default sampler, tpe)")
    elif method in SAMPLER:
        search["sampler"] = SAMPLER[method]
    else:
        lost.append(f"method: {_short(method)} is not grid, random or bayes")
    params = sweep.get("parameters") or {}
    if not isinstance(params, Mapping):
        lost.append("parameters: not a mapping of parameter names")
        params = {}
    for name, entry in params.items():
        where = f"parameters.{name}"
        key = study_key(str(name))
        if key is None:
            lost.append(
                f"{where}: names no study setting (give it a dotted study name such as "
                "training.lr; `sweeps validate` lists the searchable ones)"
            )
            continue
        if not isinstance(entry, Mapping):
            lost.append(f"{where}: not a mapping (value, values, min/max)")
            continue
        fixed, searched, why = _parameter(entry)
        if why:
            lost.append(f"{where}: {why}")
        if fixed is not _NOTHING:
            if not _fix(study, key, fixed):
                lost.append(
                    f"{where}: a fixed value of {key} cannot be carried (set it in the tasks "
                    "file's sections)"
                )
        elif searched is not None:
            space[key] = searched
    _metric(sweep.get("metric"), study, metrics, lost)
    _early_terminate(sweep.get("early_terminate"), study, search, lost)
    if "run_cap" in sweep:
        cap = sweep["run_cap"]
        if isinstance(cap, int) and not isinstance(cap, bool) and cap >= 1:
            search["n_trials"] = cap
        else:
            lost.append(f"run_cap: {_short(cap)} is not a positive whole number")
    for key in sweep:
        if key in IGNORED:
            lost.append(f"{key}: not needed (a study trains its own model; nothing to launch)")
        elif key not in {"name", "description", "method", "parameters", "metric",
                         "early_terminate", "run_cap"}:  # fmt: skip
            lost.append(f"{key}: no study setting carries it")
    search["space"] = space
    study["search"] = search
    return study, lost


_NOTHING = object()


def _fix(study: dict, key: str, value: Any) -> bool:
    """Set a fixed setting where the study file holds it: ``training.lr`` in ``training``,
    ``features.COL.FIELD`` in ``features.COL``, ``training.weights.TASK`` in
    ``training.weights``; False for one a sweep cannot fix here (``options.*``)."""
    found = setting(key)
    if found is None or found[0] == "options":
        return False
    path, field = found[0].split("."), key.rsplit(".", 1)[1]
    node = study
    for part in path:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
        node[part] = dict(child)
        node = node[part]
    node[field] = value
    return True


def _parameter(entry: Mapping[str, Any]) -> tuple[Any, dict | None, str]:
    """(a fixed value or _NOTHING, a space entry or None, why something was not carried)."""
    notes = []
    if "probabilities" in entry:
        notes.append("probabilities: not carried (the study draws its choices uniformly)")
    if "value" in entry:
        return entry["value"], None, "; ".join(notes)
    if "values" in entry:
        values = entry["values"]
        if not isinstance(values, list) or not values:
            return _NOTHING, None, "values: not a non-empty list"
        return _NOTHING, {"choices": list(values)}, "; ".join(notes)
    distribution = entry.get("distribution")
    if "min" in entry and "max" in entry:
        low, high = entry["min"], entry["max"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
            return _NOTHING, None, "min/max: not numbers"
        if distribution is None:
            distribution = (
                "int_uniform" if isinstance(low, int) and isinstance(high, int) else "uniform"
            )
        if distribution not in RANGE_DISTRIBUTIONS:
            return (
                _NOTHING,
                None,
                (
                    f"distribution: {distribution!r} has no study equivalent (a study searches "
                    "uniform, integer, stepped and log ranges)"
                ),
            )
        out: dict[str, Any] = {"low": low, "high": high}
        if distribution == "int_uniform":
            out = {"low": int(low), "high": int(high), "step": 1}
        elif distribution == "q_uniform":
            out["step"] = entry.get("q", 1)
        elif distribution == "log_uniform_values":
            out["log"] = True
        elif distribution == "log_uniform":  # W&B's bounds are natural logs here
            if max(low, high) > 700:
                return _NOTHING, None, "log_uniform: bounds are natural logs; e^700 overflows"
            out = {"low": _round(math.exp(low)), "high": _round(math.exp(high)), "log": True}
        return _NOTHING, out, "; ".join(notes)
    if distribution is not None:
        return _NOTHING, None, f"distribution: {distribution!r} without min/max cannot be carried"
    return _NOTHING, None, "no value, values or min/max"


def _short(value: Any) -> str:
    """A value as a message shows it: one line, at most 80 characters."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _metric(metric: Any, study: dict, metrics: set[str], lost: list[str]) -> None:
    if metric is None:
        return
    if not isinstance(metric, Mapping) or "name" not in metric:
        lost.append("metric: not a mapping with a name")
        return
    name = str(metric["name"])
    plain = name.lower()
    for prefix in METRIC_PREFIXES:
        plain = plain.removeprefix(prefix)
    objective = (
        "the study's objective is the validation Δm of every task against its single-task "
        "baseline, maximised"
    )
    tasks = study.get("tasks")
    if plain in metrics and isinstance(tasks, dict):
        study["tasks"] = {
            t: ({**c, "metric": plain} if isinstance(c, Mapping) else c) for t, c in tasks.items()
        }
        lost.append(f"metric: {name!r} ({metric.get('goal', 'minimize')}): {objective}, each "
                    f"task's Δ measured on {plain} (tasks.*.metric)")  # fmt: skip
    else:
        lost.append(f"metric: {name!r}: {objective}; no task metric is named {plain!r}")


def _early_terminate(rule: Any, study: dict, search: dict, lost: list[str]) -> None:
    if rule is None:
        return
    if not isinstance(rule, Mapping) or rule.get("type") != "hyperband":
        lost.append(f"early_terminate: {_short(rule)}; only hyperband has a study equivalent")
        return
    search["pruner"] = "hyperband"
    for name in ("min_iter", "max_iter"):
        value = rule.get(name)
        if name in rule and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            lost.append(f"early_terminate.{name}: {_short(value)} is not a positive whole number")
            return
    if "min_iter" in rule:
        search["pruner_warmup"] = rule["min_iter"] - 1
    if "max_iter" in rule:
        training = study.setdefault("training", {})
        if isinstance(training, dict) and "epochs" not in training:
            study["training"] = {**training, "epochs": rule["max_iter"]}
    if rule.get("eta", 3) != 3:
        lost.append(
            f"early_terminate.eta: {_short(rule['eta'])}; the study's Hyperband halves by 3"
        )
    for key in rule:
        if key not in {"type", "min_iter", "max_iter", "eta"}:
            lost.append(f"early_terminate.{key}: not carried")


def _name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")
    return cleaned or "imported"


def tasks_base(raw: Any, tasks_file: Path, out_folder: Path) -> dict[str, Any]:
    """The study's sections from the tasks file, its relative data paths rewritten relative
    to ``out_folder`` (where the study is written)."""
    base = dict(raw) if "tasks" in raw else {"tasks": dict(raw)}

    def moved(path: Any) -> Any:
        if not isinstance(path, str) or path.startswith("builtin:") or Path(path).is_absolute():
            return path
        return os.path.relpath((tasks_file.parent / path).resolve(), out_folder.resolve())

    tasks = base.get("tasks")
    if isinstance(tasks, Mapping):
        rewritten = {}
        for name, task in tasks.items():
            if isinstance(task, Mapping):
                task = {**task, **({"path": moved(task["path"])} if "path" in task else {})}
                split = task.get("split")
                if isinstance(split, Mapping) and "train" in split:  # a file per split
                    task["split"] = {k: moved(v) for k, v in split.items()}
            rewritten[name] = task
        base["tasks"] = rewritten
    if "workdir" in base:
        base["workdir"] = moved(base["workdir"])
    return base


def import_file(sweep_file: Path, tasks_file: Path, out: Path, force: bool = False) -> list[str]:
    """Translate ``sweep_file`` with the tasks of ``tasks_file`` into the study file ``out``
    (checked as ``sweeps validate`` checks a study's fields, written whole); returns the keys
    not carried over, with why. ``StudyError`` names the file or field at fault."""
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise StudyError(f"--out: {out.name!r}; a study file ends in .yaml or .yml")
    if not out.parent.is_dir():
        raise StudyError(f"--out: no such folder {out.parent}")
    if out.exists() and not force:
        raise StudyError(f"--out: {out} exists; --force overwrites it")
    sweep = _read_mapping(sweep_file, "SWEEP")
    raw_tasks = _read_mapping(tasks_file, "--tasks")
    base = tasks_base(raw_tasks, tasks_file, out.parent)
    if not isinstance(base.get("tasks"), Mapping) or not base["tasks"]:
        raise StudyError(f"--tasks: {tasks_file} holds no tasks (a mapping of task names)")
    types = [t.get("type") for t in base["tasks"].values() if isinstance(t, Mapping)]
    metrics = set.intersection(*(set(allowed_metrics(str(t))) for t in types)) if types else set()
    study, lost = translate(sweep, base, metrics)
    study = {"name": study.pop("name", None) or _name(sweep_file.stem), **study}
    try:
        spec_from_mapping(study, out.parent)
    except StudyError as exc:
        raise StudyError(
            [f"the translated study: {p.split(': ', 1)[-1]}" for p in exc.problems]
        ) from None
    header = [f"# translated from {' '.join(sweep_file.name.split())} by `sweeps import-wandb`"]
    if sweep.get("description"):
        header.append(f"# W&B description: {' '.join(str(sweep['description']).split())}")
    if lost:
        header.append("# not carried over:")
        header += [f"#   {' '.join(line.split())}" for line in lost]  # one line each
    text = "\n".join(header) + "\n" + yaml.safe_dump(study, sort_keys=False, allow_unicode=True)
    write_text_whole(out, text)
    return lost


def _read_mapping(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise StudyError(f"{what}: no such file {path}")
    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise StudyError(f"{what}: {path} is not valid YAML: {exc}") from None
    _check_yaml(path, root)  # duplicate keys and alias bombs, as a study file is checked
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise StudyError(f"{what}: {path} is not a mapping of keys")
    return raw
