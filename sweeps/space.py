"""The search space: a trial's sampled values become a plain ``TrialConfig``.

Space keys are dotted paths into ``model`` and ``training`` (``model.hidden_size``,
``training.lr``), into a column's feature settings (``features.text.max_features``: a trial
then trains on features made with its own settings), into the options of the study's
built-in sources (``options.correlation``: a trial then trains on data drawn with its own
value), plus ``tasks``. A range on an integer field samples integers, on a float
field floats; text-valued fields take ``choices`` only. ``tasks: {subsets: ...}`` samples
which tasks train together; every candidate subset is one categorical choice, written
``"a,b"`` (sorted).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_args, get_origin

from pydantic import BaseModel, ValidationError, create_model

from mtl_core.config import TrainConfig
from mtl_core.data.builtin import DEFAULTS as BUILTIN_OPTIONS
from mtl_core.methods import combination_problems
from sweeps.schema import (
    ChoicesParam,
    ModelConfig,
    RangeParam,
    StudySpec,
    SubsetsParam,
    TextFeatureConfig,
    TrainingConfig,
)

if TYPE_CHECKING:
    import optuna


SECTIONS: dict[str, type[BaseModel]] = {"model": ModelConfig, "training": TrainingConfig}
NOT_SEARCHABLE = {
    "model.trunk_options",
    "training.weights",
    "training.seeds",
    "training.device",
    "training.affinity_every",
    "training.diagnostics_every",
    "training.early_stopping",
}


# every option of a built-in source, typed as its default is (searched as `options.NAME`)
Options = create_model(  # type: ignore[call-overload]
    "Options",
    **{
        name: (type(default), default)
        for source in BUILTIN_OPTIONS.values()
        for name, default in source.items()
    },
)


@dataclass
class TrialConfig:
    """Everything one trial trains with: no Optuna inside."""

    tasks: list[str]
    model: ModelConfig
    training: TrainingConfig
    params: dict[str, Any] = field(default_factory=dict)
    features: dict[str, TextFeatureConfig] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # sampled built-in source options

    def train_config(self, seed: int) -> TrainConfig:
        return TrainConfig(**self.model.model_dump(), **self.training.train_values(), seed=seed)


def searchable_fields() -> list[str]:
    return [
        f"{section}.{name}"
        for section, model in SECTIONS.items()
        for name in model.model_fields
        if f"{section}.{name}" not in NOT_SEARCHABLE
    ] + [
        "features.COLUMN.{" + ",".join(TextFeatureConfig.model_fields) + "}",
        "options.{" + ",".join(Options.model_fields) + "} (built-in sources)",
        "training.weights.TASK (static weighting)",
    ]


def setting(key: str) -> tuple[str, type[BaseModel], str] | None:
    """Where a space key points: (section, its model, field); ``features.COL.FIELD`` gives
    section ``features.COL``. None for a key that names no searchable setting."""
    parts = key.split(".")
    if len(parts) == 2 and parts[0] in SECTIONS and key not in NOT_SEARCHABLE:
        if parts[1] in SECTIONS[parts[0]].model_fields:
            return parts[0], SECTIONS[parts[0]], parts[1]
    if len(parts) == 3 and parts[0] == "features" and parts[2] in TextFeatureConfig.model_fields:
        return f"features.{parts[1]}", TextFeatureConfig, parts[2]
    if len(parts) == 2 and parts[0] == "options" and parts[1] in Options.model_fields:
        return "options", Options, parts[1]
    if len(parts) == 3 and parts[:2] == ["training", "weights"]:  # one task's static weight
        weight = create_model("Weight", **{parts[2]: (float, 1.0)})  # type: ignore[call-overload]
        return "training.weights", weight, parts[2]
    return None


MAX_SUBSETS = 10_000


def subset_count(spec: StudySpec) -> int:
    """How many combinations ``task_subsets`` would list, counted without listing them."""
    entry = spec.search.space.get("tasks")
    if not isinstance(entry, SubsetsParam):
        return len(task_subsets(spec))
    rule = entry.subsets
    pool = len([n for n in spec.task_names if n not in rule.exclude])
    fixed = len(set(rule.include))  # in every subset; the rest choose among pool - fixed
    top = min(rule.max_size or pool, pool)
    return sum(
        math.comb(pool - fixed, size - fixed) for size in range(max(rule.min_size, fixed), top + 1)
    )


def task_subsets(spec: StudySpec) -> list[tuple[str, ...]]:
    """The task combinations a trial can draw (every task together when not searched)."""
    entry = spec.search.space.get("tasks")
    names = spec.task_names
    if not isinstance(entry, SubsetsParam):
        return [tuple(names)] if entry is None else [tuple(sorted(c)) for c in entry.choices]
    rule = entry.subsets
    top = rule.max_size or len(names)
    pool = [n for n in names if n not in rule.exclude]
    return [
        combo
        for size in range(rule.min_size, min(top, len(pool)) + 1)
        for combo in itertools.combinations(pool, size)
        if set(rule.include) <= set(combo)
    ]


def check_space(spec: StudySpec) -> list[tuple[tuple, str]]:
    """Problems with ``search.space``, as (location, message) pairs naming the key."""
    problems: list[tuple[tuple, str]] = []
    for key, entry in spec.search.space.items():
        loc = ("search", "space", key)
        where = f"search.space.{key}"
        if key == "tasks":
            problems += [(loc, f"{where}: {p}") for p in _check_tasks(spec, entry)]
            continue
        found = setting(key)
        if found is None:
            allowed = ", ".join(["tasks", *searchable_fields()])
            problems.append((loc, f"{where}: not a searchable setting; allowed: {allowed}"))
            continue
        section, model, name = found
        if section.startswith("features.") and not _read_column(spec, section[9:]):
            problems.append((loc, f"{where}: no task reads a column {section[9:]!r} as input"))
            continue
        if section == "training.weights" and name not in spec.tasks:
            tasks = ", ".join(spec.task_names)
            problems.append((loc, f"{where}: no task {name!r}; tasks are {tasks}"))
            continue
        if section == "options" and not _option_owners(spec, name):
            problems.append((loc, f"{where}: no built-in source of this study takes {name!r}"))
            continue
        if isinstance(entry, SubsetsParam):
            problems.append((loc, f"{where}: `subsets` applies to `tasks` only"))
            continue
        kind = _field_kind(model, name)
        if isinstance(entry, RangeParam):
            if kind == "choice":
                problems.append((loc, f"{where}: a text setting takes `choices`, not a range"))
                continue
            if kind == "int" and not all(
                float(v).is_integer() for v in (entry.low, entry.high, entry.step or 1)
            ):
                problems.append(
                    (loc, f"{where}: {name} is an integer; low, high and step must be integers")
                )
                continue
            values = [entry.low, entry.high]
        else:
            values = list(entry.choices)
        for value in values:
            message = _invalid(
                spec,
                section,
                name,
                int(value) if kind == "int" and isinstance(value, float) else value,
            )
            if message:
                problems.append((loc, f"{where}: value {value!r} is not allowed: {message}"))
    if spec.baselines.mode == "tuned" and not tuning_space(spec):
        problems.append(
            (
                ("baselines", "mode"),
                "baselines.mode: `tuned` searches the model and training settings of "
                "search.space, and it names none (only tasks, schedule or weighting); add one "
                "(e.g. model.hidden_size) or use `mode: matched`",
            )
        )
    if spec.search.sampler == "cmaes" and spec.search.multi_objective:
        problems.append(
            (
                ("search", "sampler"),
                "search.sampler: `cmaes` optimises one objective; with `objective: per_task` "
                "use nsga2, tpe, random, grid or gp",
            )
        )
    if not problems and spec.search.sampler == "grid":
        problems += _check_grid(spec)
    if not problems:
        problems += _check_combinations(spec)
    return problems


GRID_LIMIT = 100_000


def grid_values(spec: StudySpec) -> dict[str, list[Any]]:
    """Every value each searched parameter takes on the grid (``search.sampler: grid``)."""
    out: dict[str, list[Any]] = {}
    for key, entry in spec.search.space.items():
        if key == "tasks":
            out[key] = [",".join(c) for c in task_subsets(spec)]
        elif isinstance(entry, ChoicesParam):
            out[key] = list(entry.choices)
        else:
            _, model, name = setting(key)
            integer = _field_kind(model, name) == "int"
            step = entry.step or (1 if integer else None)
            if step is None:
                raise ValueError(key)
            count = int(round((entry.high - entry.low) / step)) + 1
            values = [
                entry.low + i * step
                for i in range(count)
                if entry.low + i * step <= entry.high + 1e-12
            ]
            out[key] = (
                [int(round(v)) for v in values] if integer else [round(v, 12) for v in values]
            )
    return out


def grid_size(spec: StudySpec) -> int:
    size = 1
    for values in grid_values(spec).values():
        size *= len(values)
    return size


def _check_grid(spec: StudySpec) -> list[tuple[tuple, str]]:
    problems = []
    for key, entry in spec.search.space.items():
        if not isinstance(entry, RangeParam) or entry.step is not None:
            continue  # choices (and `tasks`) are finite already
        _, model, name = setting(key)
        if _field_kind(model, name) != "int":
            problems.append(
                (
                    ("search", "space", key),
                    f"search.space.{key}: the grid sampler needs a finite set of values; give "
                    "`step` or `choices`",
                )
            )
    if not problems and grid_size(spec) > GRID_LIMIT:
        problems.append(
            (
                ("search", "sampler"),
                f"search.sampler: the grid has {grid_size(spec):,} points (more than "
                f"{GRID_LIMIT:,}); use fewer values or another sampler",
            )
        )
    return problems


def _check_tasks(spec: StudySpec, entry: Any) -> list[str]:
    names = set(spec.tasks)
    if isinstance(entry, RangeParam):
        return ["use `subsets: {min_size, max_size, include, exclude}` or `choices: [[a, b], ...]`"]
    if isinstance(entry, ChoicesParam):
        out = []
        for choice in entry.choices:
            if not isinstance(choice, list) or not choice:
                out.append(f"each choice is a non-empty list of task names, got {choice!r}")
            elif unknown := [t for t in choice if t not in names]:
                out.append(
                    f"unknown task(s) {', '.join(map(str, unknown))}; tasks are {', '.join(sorted(names))}"
                )
            elif len(set(choice)) < len(choice):
                twice = sorted({t for t in choice if choice.count(t) > 1})
                out.append(f"{choice!r} names {', '.join(twice)} twice; a task set names each once")
        return out
    rule = entry.subsets
    unknown = [t for t in rule.include + rule.exclude if t not in names]
    if unknown:
        return [
            f"unknown task(s) {', '.join(unknown)} in include/exclude; tasks are {', '.join(sorted(names))}"
        ]
    if rule.max_size is not None and rule.max_size < rule.min_size:
        return [f"max_size ({rule.max_size}) is below min_size ({rule.min_size})"]
    if set(rule.include) & set(rule.exclude):
        return ["a task cannot be both included and excluded"]
    count = subset_count(spec)
    if count > MAX_SUBSETS:
        return [
            f"{count:,} task combinations; at most {MAX_SUBSETS:,} (each is one categorical"
            " choice): narrow them with max_size, include or exclude"
        ]
    if not count:
        return [
            f"no combination of the {len(names)} tasks satisfies min_size/max_size/include/exclude"
        ]
    return []


COMBINED = ("architecture", "schedule", "weighting", "gradients", "optimizer_per_task")


def combinations(spec: StudySpec) -> list[tuple[dict[str, Any], list[str]]]:
    """Every combination of tasks and methods the study can draw, each with the reasons it
    cannot train (empty: it can)."""
    choices = {
        name: _candidates(spec, f"{section}.{name}", getattr(getattr(spec, section), name))
        for name, section in zip(COMBINED, ("model", *["training"] * 4), strict=True)
    }
    searched = {
        k.split(".")[2]: 1.0 for k in spec.search.space if k.startswith("training.weights.")
    }
    weights = {**spec.training.weights, **searched}
    out = []
    for tasks in task_subsets(spec):
        for values in itertools.product(*choices.values()):
            settings = dict(zip(choices, values, strict=True))
            reasons = combination_problems(tasks, weights=weights, **settings)
            out.append(({"tasks": list(tasks), **settings}, reasons))
    return out


def _check_combinations(spec: StudySpec) -> list[tuple[tuple, str]]:
    """Refuse a study in which no combination of its fixed and sampled settings can train."""
    found = combinations(spec)
    if any(not reasons for _, reasons in found):
        return []
    first = found[0][1][0]
    where = "training.weighting"
    if "optimizer_per_task" in first:
        where = "training.optimizer_per_task"
    elif "gradients: features" in first:
        where = "training.gradients"
    return [(tuple(where.split(".")), f"{where}: no trial could train: {first}")]


def _candidates(spec: StudySpec, key: str, fixed: Any) -> list[Any]:
    entry = spec.search.space.get(key)
    return list(entry.choices) if isinstance(entry, ChoicesParam) else [fixed]


NOT_FOR_ONE_TASK = {"tasks", "training.schedule", "training.weighting"}


def tuning_space(spec: StudySpec) -> dict[str, Any]:
    """The part of ``search.space`` that a tuned single-task baseline searches."""
    return {k: v for k, v in spec.search.space.items() if k not in NOT_FOR_ONE_TASK}


def trial_problems(config: TrialConfig, spec: StudySpec) -> list[str]:
    """Why a sampled combination cannot train (empty when it can)."""
    training = config.training
    return combination_problems(
        config.tasks,
        architecture=config.model.architecture,
        schedule=training.schedule,
        weighting=training.weighting,
        gradients=training.gradients,
        optimizer_per_task=training.optimizer_per_task,
        weights=training.weights,
    )


def sample(trial: optuna.Trial, spec: StudySpec) -> TrialConfig:
    """Draw a trial's values from the space and build its effective configuration."""
    updates: dict[str, dict[str, Any]] = {"model": {}, "training": {}}
    tasks = spec.task_names
    for key, entry in spec.search.space.items():
        if key == "tasks":
            combos = [",".join(c) for c in task_subsets(spec)]
            tasks = trial.suggest_categorical("tasks", combos).split(",")
            continue
        section, model, name = setting(key)
        if isinstance(entry, ChoicesParam):
            value = trial.suggest_categorical(key, entry.choices)
        elif _field_kind(model, name) == "int":
            step = int(entry.step or 1)
            value = trial.suggest_int(
                key, int(entry.low), int(entry.high), step=step, log=entry.log
            )
        else:
            value = trial.suggest_float(key, entry.low, entry.high, step=entry.step, log=entry.log)
        updates.setdefault(section, {})[name] = value
    return fixed_config(spec, tasks, updates)


def config_from_params(spec: StudySpec, tasks: list[str], params: dict[str, Any]) -> TrialConfig:
    """The configuration of a finished Optuna trial, from its parameters."""
    updates: dict[str, dict[str, Any]] = {}
    for key, value in params.items():
        found = setting(key)
        if found is not None:
            updates.setdefault(found[0], {})[found[2]] = value
    return fixed_config(spec, tasks, updates)


def fixed_config(
    spec: StudySpec, tasks: list[str] | None = None, updates: dict | None = None
) -> TrialConfig:
    updates = updates or {}
    model = ModelConfig.model_validate({**spec.model.model_dump(), **updates.get("model", {})})
    training_values = {**spec.training.model_dump(), **updates.get("training", {})}
    if updates.get("training.weights"):  # searched static weights join the fixed ones
        training_values["weights"] = {**training_values["weights"], **updates["training.weights"]}
    training = TrainingConfig.model_validate(training_values)
    options = dict(updates.get("options", {}))
    features = dict(spec.features)
    for section, values in updates.items():
        if section.startswith("features."):
            column = section.removeprefix("features.")
            current = features.get(column, TextFeatureConfig()).model_dump()
            features[column] = TextFeatureConfig.model_validate({**current, **values})
    tasks = sorted(tasks or spec.task_names)
    params = effective_params(spec, tasks, model, training, features)
    params.update({f"options.{k}": v for k, v in sorted(options.items())})
    return TrialConfig(tasks, model, training, params, features, options)


def effective_params(
    spec: StudySpec,
    tasks: list[str],
    model: ModelConfig,
    training: TrainingConfig,
    features: dict[str, TextFeatureConfig] | None = None,
) -> dict[str, Any]:
    """Every setting of a trial, sampled or fixed, under its dotted name."""
    params: dict[str, Any] = {"tasks": ",".join(tasks), "seed": spec.seed}
    params.update(model_params(model.model_dump()))
    for k, v in training.model_dump().items():
        if k == "weights":
            params.update({f"training.weights.{t}": w for t, w in sorted(v.items())})
        elif k == "early_stopping":
            params.update({f"training.early_stopping.{s}": x for s, x in (v or {}).items()})
            if v is None:
                params["training.early_stopping"] = "off"
        else:
            params[f"training.{k}"] = v
    for column, text in (spec.features if features is None else features).items():
        params.update({f"features.{column}.{k}": v for k, v in text.model_dump().items()})
    params["baselines.mode"] = spec.baselines.mode
    return params


def model_params(values: dict[str, Any]) -> dict[str, Any]:
    """A ``model`` section's settings as params: ``model.NAME``, and a user trunk's factory
    options one each (``model.trunk_options.OPTION``)."""
    params: dict[str, Any] = {}
    for k, v in values.items():
        if k == "trunk_options":
            params.update({f"model.trunk_options.{o}": x for o, x in sorted(v.items())})
        else:
            params[f"model.{k}"] = v
    return params


def _field_kind(model: type[BaseModel], name: str) -> str:
    annotation = model.model_fields[name].annotation
    args = [a for a in get_args(annotation) if a is not type(None)]
    if type(None) in get_args(annotation) and len(args) == 1:
        annotation = args[0]  # an optional setting (max_features: int | None)
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    if get_origin(annotation) is not None and all(isinstance(a, str) for a in get_args(annotation)):
        return "choice"
    return "choice" if annotation in (str, bool) else "float"


def _option_owners(spec: StudySpec, option: str) -> list[str]:
    """The tasks whose built-in source takes ``option``."""
    return [n for n, t in spec.tasks.items() if option in BUILTIN_OPTIONS.get(t.builtin or "", {})]


def _read_column(spec: StudySpec, column: str) -> bool:
    return any(column in t.input_columns for t in spec.tasks.values())


def _invalid(spec: StudySpec, section: str, name: str, value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if section.startswith("features."):
        model: type[BaseModel] = TextFeatureConfig
        found = spec.features.get(section.removeprefix("features."))
        current = found.model_dump() if found else {}
    elif section == "options":
        model, current = Options, {}
    elif section == "training.weights":
        return None if isinstance(value, int | float) and value >= 0 else "a weight is >= 0"
    else:
        model, current = SECTIONS[section], getattr(spec, section).model_dump()
    try:
        model.model_validate({**current, name: value})
    except ValidationError as exc:
        return "; ".join(e["msg"] for e in exc.errors())
    return None
