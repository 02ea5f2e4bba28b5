"""What ``validate`` prints: the plan of a study (its tasks, rows, search space and budget).
``status`` has its own module, ``sweeps/status.py``, light enough to load without the data
libraries."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mtl_core.methods import MULTI_TASK_ONLY, SINGLE_TASK_TRAINING, baseline_model_setting
from sweeps.console import plain_console as _console
from sweeps.masking import mask
from sweeps.schema import ChoicesParam, RangeParam, StudySpec, SubsetsParam
from sweeps.space import (
    _field_kind,
    combinations,
    fixed_config,
    grid_size,
    setting,
    task_subsets,
    trial_problems,
)
from sweeps.study_data import StudyData


def _rows(task, split: str) -> str:
    if task.labelled is None:
        return str(task.rows(split))
    return f"{task.labelled_rows(split)} of {task.rows(split)}"


def print_plan(spec: StudySpec, data: StudyData, console: Console | None = None) -> None:
    console = console or _console()
    console.print(Text.assemble((f"study {spec.name}", "bold"), f": valid ({spec.source})"))
    tasks = Table("task", "type", "metric", "classes", "train", "valid", "test", title="tasks")
    for name in spec.task_names:
        task = data.tasks[name]
        classes = ", ".join(task.spec.classes) if task.spec.classes else "-"
        rows = [_rows(task, s) for s in ("train", "valid", "test")]
        tasks.add_row(name, task.spec.type, task.spec.metric, classes, *rows)
    console.print(tasks)
    if any(data.tasks[n].labelled is not None for n in spec.task_names):
        console.print("rows: labelled of all, for tasks with partial labels")
    described = list(data.space.describe())
    arrays = [n for n in spec.task_names if spec.tasks[n].is_array]
    if arrays:
        shape = "×".join(str(d) for d in data.tasks[arrays[0]].input_shape)
        described.append(f"{spec.tasks[arrays[0]].inputs} [array] {shape} for {','.join(arrays)}")
    console.print(
        "features: "
        + "; ".join(described)
        + (f" (input width {data.space.width})" if data.space.blocks else "")
    )
    fixed = fixed_config(spec)
    console.print(
        "defaults: "
        + ", ".join(
            f"{k}={v}" for k, v in fixed.params.items() if k.startswith(("model.", "training."))
        )
    )
    space = Table("setting", "searched over", title="search space")
    for key, entry in spec.search.space.items():
        space.add_row(key, _describe_entry(spec, entry))
    if spec.search.space:
        console.print(space)
    else:
        console.print("search space: empty (every trial trains the defaults)")
    combos = len(task_subsets(spec))
    search = spec.search
    pruner = search.effective_pruner
    if search.multi_objective:
        pruner += " (multi-objective trials cannot be pruned)"
    trials = f"{search.n_trials} trials"
    if search.sampler == "grid":
        trials += f" (grid of {grid_size(spec)} points: at most that many)"
    console.print(
        f"search: {trials}, sampler {search.sampler}, pruner {pruner}, "
        f"objective {search.objective}; {combos} task combination(s)"
    )
    seeds = spec.training.seeds
    baselines = (
        f"tuned once per task ({spec.baselines.trials} trials each)"
        if spec.baselines.mode == "tuned"
        else "matched (each trial's own settings)"
    )
    console.print(
        f"seeds: {seeds} per trial"
        + (" (means, std, 95% interval)" if seeds > 1 else "")
        + f"; baselines: {baselines}"
    )
    count, warnings = baseline_budget(spec)
    console.print(
        "baselines: at most "
        + (f"{count:,}" if count is not None else "one new set per trial")
        + " distinct single-task models (trained once per key and reused: "
        + "tasks × baseline-keyed settings the space allows × seeds"
        + (", confirmation seeds included)" if spec.search.confirms else ")")
    )
    for line in warnings:
        console.print(Text.assemble(("warning", "yellow"), f": {line}"))
    problems = trial_problems(fixed, spec)
    if problems:
        console.print(
            f"note: the defaults alone cannot train ({'; '.join(problems)}); such trials are pruned"
        )
    found = combinations(spec)
    invalid = [(settings, reasons) for settings, reasons in found if reasons]
    if invalid and len(found) > 1:
        settings, reasons = invalid[0]
        example = ", ".join(f"{k}={v}" for k, v in settings.items() if k != "tasks")
        console.print(
            f"methods: {len(found) - len(invalid)} of {len(found)} combinations of tasks, "
            f"architecture, schedule and weighting can train; the other {len(invalid)} are "
            f"recorded as pruned with their reason when drawn (e.g. {example}: {reasons[0]})"
        )
    console.print(f"stores: tracking {mask(spec.tracking)}; optuna {mask(spec.optuna_storage)}")


def _values(spec: StudySpec, key: str, entry) -> int | None:
    """How many values a space entry can take (None: a continuum)."""
    if isinstance(entry, ChoicesParam):
        return len(entry.choices)
    if not isinstance(entry, RangeParam):
        return None
    found = setting(key)
    integer = (
        found is not None
        and found[0] in ("model", "training")
        and (_field_kind(found[1], found[2]) == "int")
    )
    if entry.step:
        return int((entry.high - entry.low) // entry.step) + 1
    if integer:
        return int(entry.high) - int(entry.low) + 1
    return None


def baseline_keyed(key: str) -> bool:
    """Whether a space key changes a task's single-task baseline (matched mode)."""
    if key == "tasks" or key.startswith("training.weights"):
        return False
    if key.startswith("training."):
        name = key.removeprefix("training.")
        return name not in set(SINGLE_TASK_TRAINING) | MULTI_TASK_ONLY
    if key.startswith("model."):  # soft sharing's penalty is not a single-task model's
        return baseline_model_setting(key.removeprefix("model."))
    return True  # features.*, options.*


def baseline_budget(spec: StudySpec) -> tuple[int | None, list[str]]:
    """The most distinct baselines a study can train, and warnings for settings that give
    (nearly) every trial new baselines."""
    seeds = spec.training.seeds + (
        spec.search.confirm.seeds if spec.search.confirms and spec.search.confirm else 0
    )
    tasks = len(spec.tasks)
    if spec.baselines.mode == "tuned":
        return tasks * seeds, []
    count: int | None = tasks * seeds
    warnings = []
    for key, entry in spec.search.space.items():
        if not baseline_keyed(key):
            continue
        values = _values(spec, key, entry)
        ranged = isinstance(entry, RangeParam) and spec.search.sampler != "grid"
        if ranged and (values is None or values >= spec.search.n_trials):
            what = "a continuous range" if values is None else f"a range of {values} values"
            warnings.append(
                f"search.space.{key}: {what} for a setting the baselines depend on gives "
                "nearly every trial new single-task baselines (most of the study's time); "
                "give it `choices` (e.g. 3-5 values) or set `baselines.mode: tuned`"
            )
        count = None if values is None or count is None else count * values
    return count, warnings


def _describe_entry(spec: StudySpec, entry) -> str:
    if isinstance(entry, RangeParam):
        scale = " (log)" if entry.log else ""
        step = f" step {entry.step:g}" if entry.step else ""
        return f"{entry.low:g} .. {entry.high:g}{scale}{step}"
    if isinstance(entry, ChoicesParam):
        return ", ".join(map(str, entry.choices))
    if isinstance(entry, SubsetsParam):
        return " | ".join(",".join(c) for c in task_subsets(spec))
    return str(entry)
