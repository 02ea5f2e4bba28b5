"""What ``validate`` and ``status`` print: the plan of a study and the table of its trials."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mtl_core.methods import MULTI_TASK_ONLY, SINGLE_TASK_TRAINING, baseline_model_setting
from sweeps import record
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
from sweeps.transfer_matrix import pair_matrix, print_matrix
from sweeps.verdict import pick_winner, share_text, study_runs, winner_lines


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


def _console() -> Console:
    """The console of the light commands. Markup is off: names, labels, columns and paths come
    from the user (a study named ``a[/x]b`` crashed `validate`); styles are ``Text`` styles."""
    plain = {"markup": False, "emoji": False}
    return Console(**plain) if sys.stdout.isatty() else Console(width=200, **plain)


def print_status(spec: StudySpec, console: Console | None = None, rows: int = 0) -> None:
    """The trials' table (the ``rows`` most recent; 0: all), the best by validation, the pair
    matrix and the winner."""
    # here, not at the top: optuna loads only when this runs
    import optuna

    console = console or _console()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if spec.storage is None and not (spec.workdir_path / "optuna.db").exists():
        console.print(f"study {spec.name}: no trials yet (run `sweeps run {spec.source}`)")
        return
    try:
        study = optuna.load_study(study_name=spec.name, storage=spec.optuna_storage)
    except KeyError:
        console.print(f"study {spec.name}: no trials yet (run `sweeps run {spec.source}`)")
        return
    # here, not at the top: optuna loads only when this runs
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    # here, not at the top: optuna loads only when this runs
    from sweeps.study_state import best_of, pareto_front

    searched = [k for k in spec.search.space if k != "tasks"]
    front = set(pareto_front(study))
    table = Table(
        "trial",
        "state",
        "tasks",
        "valid Δm %",
        "test Δm %",
        "Δ per task % (test)",
        *(["Pareto"] if spec.search.multi_objective else []),
        *searched,
        "note",
        title=f"study {spec.name}",
    )
    trials = study.get_trials(deepcopy=False)  # once: `study.trials` copies every trial each time
    listed = [t for t in trials if not t.user_attrs.get("surplus")]
    hidden = len(trials) - len(listed)
    earlier = max(0, len(listed) - rows) if rows else 0
    for t in listed[earlier:]:
        valid = t.user_attrs.get("valid_delta_m", t.value if len(study.directions) == 1 else None)
        delta_m = t.user_attrs.get("delta_m")
        tasks = t.params.get("tasks", ",".join(spec.task_names))
        shown = [_short(t.params.get(k, "")) for k in searched]
        note = t.user_attrs.get("reason", "")
        retry_of = RetryHeartbeatStaleTrialCallback.retried_trial_number(t)
        if t.state == optuna.trial.TrialState.FAIL and not note:
            note = (
                "worker died (no heartbeat); retried" if _was_retried(trials, t) else "worker died"
            )
        if retry_of is not None:
            note = f"retry of trial {retry_of}" + (f"; {note}" if note else "")
        table.add_row(
            str(t.number),
            "REUSED" if "reuses" in t.user_attrs else t.state.name,  # an earlier trial's result
            tasks,
            f"{valid:+.2f}" if valid is not None else "",
            f"{delta_m:+.2f}" if delta_m is not None else "",
            _per_task(t.user_attrs),
            *(["yes" if t.number in front else ""] if spec.search.multi_objective else []),
            *shown,
            note,
        )
    console.print(table)
    if earlier:
        console.print(
            f"({earlier} earlier trial(s) not shown: `--rows 0` lists every trial; the best by "
            "validation is below, whichever trial it is)"
        )
    if any(t.user_attrs.get("significant") for t in trials):
        console.print(
            "negative Δ marked `real`: its 95% interval over the seeds excludes zero; "
            "`noise`: it does not (see README, Seeds and significance)"
        )
    elif spec.training.seeds == 1:
        console.print(
            "one seed per trial: a negative Δ may be noise; set training.seeds (e.g. 3) to test it"
        )
    if hidden:
        console.print(
            f"({hidden} surplus trial(s) started by a worker after the target was met, not shown)"
        )
    if spec.search.multi_objective:
        if front:
            console.print(
                "Pareto-optimal trials (no other trial is better on every task's validation Δ): "
                + ", ".join(str(n) for n in sorted(front))
            )
        else:
            console.print("Pareto front: no completed trial yet")

    runs = study_runs(spec)  # MLflow read once: the pair matrix, the winner, the time share
    pairs = [
        r for r in runs["trial"] + runs["transfer"] if record.has_results(r)
    ]  # (matrix_from_store would search twice more)
    matrix = pair_matrix(spec.task_names, pairs)
    matrix = matrix if matrix.covered else None
    if matrix is not None:
        print_matrix(
            matrix,
            console,
            "pair transfer matrix: test Δ % of the row's task trained with the column's alone "
            "(trials of exactly two tasks and `sweeps transfer` runs)",
        )
    number, value = best_of(study)
    if number is None:
        console.print("best by validation: no completed trial yet")
    else:
        best = trials[number]
        deltas = ", ".join(f"{k} {v:+.2f}%" for k, v in best.user_attrs.get("deltas", {}).items())
        test = best.user_attrs.get("delta_m")
        console.print(
            f"best by validation: trial {number}, validation Δm {value:+.2f}% "
            + (f"(its test Δm {test:+.2f}%; test Δ per task: {deltas})" if test is not None else "")
        )

    if spec.search.confirms or runs["confirm"]:
        for line in winner_lines(pick_winner(runs["trial"], runs["confirm"])):
            console.print(line)
    console.print(share_text(runs["trial"] + runs["confirm"]))


def _per_task(attrs: dict) -> str:
    """Each task's test Δ; with several seeds, a negative one is marked `real` when its 95%
    interval excludes zero and `noise` when it does not."""
    deltas, significant = attrs.get("deltas", {}), attrs.get("significant", {})
    parts = []
    for task, value in sorted(deltas.items()):
        mark = ""
        if value < 0 and task in significant:
            mark = " real" if significant[task] < 0 else " noise"
        parts.append(f"{task} {value:+.1f}{mark}")
    return ", ".join(parts)


def _was_retried(trials, trial) -> bool:
    # here, not at the top: optuna loads only when this runs
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    return any(
        RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == trial.number for t in trials
    )


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
