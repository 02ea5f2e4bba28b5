"""What ``validate`` and ``status`` print: the plan of a study and the table of its trials."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sweeps.space import fixed_config, task_subsets, trial_problems
from sweeps.spec import ChoicesParam, RangeParam, StudySpec, SubsetsParam
from sweeps.study_data import StudyData


def print_plan(spec: StudySpec, data: StudyData, console: Console | None = None) -> None:
    console = console or _console()
    console.print(f"[bold]study {spec.name}[/bold]: valid ({spec.source})")
    tasks = Table("task", "type", "metric", "classes", "train", "valid", "test", title="tasks")
    for name in spec.task_names:
        task = data.tasks[name]
        classes = ", ".join(task.spec.classes) if task.spec.classes else "-"
        rows = [str(task.rows(s)) for s in ("train", "valid", "test")]
        tasks.add_row(name, task.spec.type, task.spec.metric, classes, *rows)
    console.print(tasks)
    console.print(
        "features: "
        + escape("; ".join(data.space.describe()))
        + f" (input width {data.space.width})"
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
    console.print(
        f"search: {spec.search.n_trials} trials, sampler {spec.search.sampler}, pruner {spec.search.pruner}, "
        f"objective {spec.search.objective}; {combos} task combination(s)"
    )
    problems = trial_problems(fixed, spec)
    if problems:
        console.print(
            f"note: the defaults alone cannot train ({'; '.join(problems)}); such trials are pruned"
        )
    console.print(f"stores: tracking {spec.tracking}; optuna {spec.optuna_storage}")


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
    import sys

    return Console() if sys.stdout.isatty() else Console(width=200)


def print_status(spec: StudySpec, console: Console | None = None) -> None:
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
    searched = [k for k in spec.search.space if k != "tasks"]
    table = Table(
        "trial",
        "state",
        "tasks",
        "valid Δm %",
        "test Δm %",
        *searched,
        "note",
        title=f"study {spec.name}",
    )
    best = None
    for t in study.trials:
        value = f"{t.value:+.2f}" if t.value is not None else ""
        delta_m = t.user_attrs.get("delta_m")
        tasks = t.params.get("tasks", ",".join(spec.task_names))
        shown = [_short(t.params.get(k, "")) for k in searched]
        note = t.user_attrs.get("reason", "")
        table.add_row(
            str(t.number),
            t.state.name,
            tasks,
            value,
            f"{delta_m:+.2f}" if delta_m is not None else "",
            *shown,
            note,
        )
        if t.state == optuna.trial.TrialState.COMPLETE and (best is None or t.value > best.value):
            best = t
    console.print(table)
    if best is None:
        console.print("best: no completed trial yet")
    else:
        deltas = ", ".join(f"{k} {v:+.2f}%" for k, v in best.user_attrs.get("deltas", {}).items())
        console.print(f"best: trial {best.number}, validation Δm {best.value:+.2f}% ({deltas})")


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
