"""``sweeps baselines STUDY.yaml``: train what is missing (tuned mode) and list the study's
single-task baselines as recorded in MLflow."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from sweeps import record
from sweeps.console import plain_console as _console
from sweeps.schema import StudySpec
from sweeps.space import fixed_config
from sweeps.study_data import load_study_data


def run_or_show(spec: StudySpec, show_only: bool, console: Console | None = None) -> int:
    console = console or _console()
    if spec.baselines.mode == "tuned" and not show_only:
        _train_tuned(spec, console)
    elif spec.baselines.mode == "matched" and not show_only:
        console.print(
            "baselines.mode is `matched`: each trial's baselines use that trial's own settings, "
            "so they are trained by `sweeps run` as trials need them. Recorded so far:"
        )
    runs = _recorded(spec)
    if not runs:
        console.print(f"study {spec.name}: no baseline recorded yet")
        return 0
    table = Table(
        "task",
        "mode",
        "seed",
        "key",
        "valid",
        "test",
        "settings",
        "trained s",
        title=f"baselines of study {spec.name}",
    )
    for run in sorted(runs, key=lambda r: (r.data.tags.get(record.TASK, ""), r.info.start_time)):
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        task = tags.get(record.TASK, "?")
        metric = spec.tasks[task].metric if task in spec.tasks else None
        settings = ", ".join(
            f"{k.split('.', 1)[1]}={_short(params[k])}"
            for k in sorted(params)
            if k in spec.search.space or k.startswith("tuning.best_")
        )
        table.add_row(
            task,
            tags.get(record.BASELINE_MODE, "matched"),
            params.get("seed", ""),
            tags.get(record.BASELINE_KEY, "")[:12],
            _metric(metrics, _scored_valid(metrics, task, metric or ""), metric),
            _metric(metrics, record.test(task, metric or ""), metric),
            settings,
            f"{metrics.get(record.TRAIN_S, 0):.1f}",
        )
    console.print(table)
    return 0


def _train_tuned(spec: StudySpec, console: Console) -> None:
    # here, not at the top: mlflow loads only when this runs
    from sweeps.baselines import Baselines

    # here, not at the top: mlflow, optuna, torch load only when this runs
    from sweeps.runner import open_tracker, study_params

    # here, not at the top: mlflow, optuna, torch load only when this runs
    from sweeps.trial import seeds_of

    data = load_study_data(spec)
    tracker = open_tracker(spec)
    parent = tracker.study_run(spec.name, study_params(spec), reopen=False)
    baselines = Baselines(spec, data, tracker, parent)
    config = fixed_config(spec)
    for task in spec.task_names:
        for seed in seeds_of(spec):
            with console.status(f"baseline {task} seed {seed}: tuning / training"):
                found = baselines.get(task, config, seed)
            how = "reused" if found.reused else f"trained in {found.seconds:.1f} s"
            console.print(f"baseline {task} seed {seed}: {found.metric} {found.test:.4f} ({how})")


def _recorded(spec: StudySpec) -> list:
    return record.study_search(spec, record.of_kind(record.BASELINE, "FINISHED"))


def _scored_valid(metrics: dict, task: str, metric: str) -> str:
    """The scored epoch's validation metric (runs before epoch selection: the last epoch's)."""
    selected = record.selected_valid(task, metric)
    return selected if selected in metrics else record.valid(task, metric)


def _metric(metrics: dict, key: str, metric: str | None) -> str:
    return f"{metric} {metrics[key]:.4f}" if key in metrics else ""


def _short(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}"
