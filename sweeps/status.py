"""``sweeps status``: the trials' table from the Optuna storage, the best by validation, then
what only the MLflow record holds (the pair matrix with `sweeps transfer` runs, the confirmed
winner, the baselines' share of the time), read in one paginated search. Its own imports hold
no data library; MLflow, once it loads to read the record, brings pandas with it
(``benchmarks/status_scale.py`` measures the whole command on 1,000 trials)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from sweeps import record
from sweeps.console import plain_console
from sweeps.schema import StudySpec
from sweeps.transfer_matrix import pair_matrix, print_matrix
from sweeps.verdict import pick_winner, share_text, study_runs, winner_lines


def print_status(spec: StudySpec, console: Console | None = None, rows: int = 0) -> None:
    """The trials' table (the ``rows`` most recent; 0: all), the best by validation, the pair
    matrix and the winner."""
    # here, not at the top: optuna loads only when this runs
    import optuna

    console = console or plain_console()
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

    # MLflow read once: the pair matrix, the winner, the time share (no baseline runs)
    runs = study_runs(spec, (record.TRIAL, record.CONFIRM, record.TRANSFER))
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
    number, value = best_of(study, trials)
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
