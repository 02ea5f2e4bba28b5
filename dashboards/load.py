"""What MLflow holds for a study, as pandas: one row per trial run."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from sweeps import record as names  # the record's names and its one paginated search

TRIAL_FILTER = names.of_kind(names.TRIAL)


@dataclass
class StudyRecord:
    name: str
    found: bool  # the experiment exists
    trials: pd.DataFrame
    tasks: list[str] = field(default_factory=list)
    pair_runs: list = field(default_factory=list, repr=False)  # trial + transfer runs (finished)
    tracking_uri: str = ""
    experiment_id: str = ""
    trial_runs: list = field(default_factory=list, repr=False)  # every trial run, as MLflow has it
    confirm_runs: list = field(default_factory=list, repr=False)  # mtl.kind=confirm

    @property
    def complete(self) -> pd.DataFrame:
        return self.trials[self.trials["state"] == "COMPLETE"]


def load_study(tracking_uri: str, experiment_name: str) -> StudyRecord:
    # here, not at the top: mlflow loads only when this runs
    from sweeps.sqlite_stores import mlflow_client

    client = mlflow_client(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return StudyRecord(experiment_name, False, _frame([]), tracking_uri=tracking_uri)
    runs = names.search_all(client, experiment.experiment_id, TRIAL_FILTER)
    transfer = names.search_all(
        client, experiment.experiment_id, names.of_kind(names.TRANSFER, "FINISHED")
    )
    confirm = names.search_all(client, experiment.experiment_id, names.of_kind(names.CONFIRM))
    rows = [_row(run) for run in runs]
    tasks = sorted({t for row in rows for t in row["tasks"].split(",") if t})
    finished = [r for r in runs if names.has_results(r)] + transfer
    return StudyRecord(
        experiment_name,
        True,
        _frame(rows),
        tasks,
        finished,
        tracking_uri,
        experiment.experiment_id,
        runs,
        confirm,
    )


def load_trials(tracking_uri: str, experiment_name: str) -> pd.DataFrame:
    return load_study(tracking_uri, experiment_name).trials


def _row(run) -> dict:
    tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
    row = {
        "number": int(tags.get(names.TRIAL_NUMBER, -1)),
        "state": names.state_of(run),
        "tasks": tags.get(names.TASKS, ""),
        "run_id": run.info.run_id,
        "delta_m": metrics.get(names.DELTA_M),
        "valid_delta_m": metrics.get(names.VALID_DELTA_M)
        if tags.get(names.STATE) == "COMPLETE"
        else None,
        "trial_s": metrics.get(names.TRIAL_S),
        "baseline_s": metrics.get(names.BASELINE_S),
        "error": tags.get(names.ERROR, "")
        or (
            f"same settings as trial {tags[names.REUSES]}: its result, not trained again"
            if names.REUSES in tags
            else ""
        ),
        "pareto": tags.get(names.PARETO) == "true",
        "baseline_runs": names.baseline_runs(tags),
    }
    row.update({f"param:{k}": v for k, v in params.items()})
    # per-task Δ (delta/TASK and its _std, _ci95, _significant) and affinity, as columns
    row.update(
        {k: v for k, v in metrics.items() if k.startswith((names.delta(""), names.AFFINITY_PREFIX))}
    )
    return row


def _frame(rows: list[dict]) -> pd.DataFrame:
    columns = ["number", "state", "tasks", "run_id", "delta_m", "valid_delta_m", "trial_s", "error"]
    frame = pd.DataFrame(rows, columns=None if rows else columns)
    return frame.sort_values("number", ignore_index=True) if rows else frame
