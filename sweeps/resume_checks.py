"""What a `sweeps run` or `sweeps worker` checks before it adds trials to a study that exists.

A study is one experiment: every trial trained on the same rows, numbered once. Two ways to
break that went unnoticed:

- **The data changed.** A data file edited between runs, or a task's split, rows or columns
  changed in the study file, gave later trials (and their baselines) other rows than earlier
  ones, mixed into one ranking. Each task's fingerprint (the hash of its files and settings,
  ``StudyData.fingerprints``) is kept in the Optuna study's user attributes by the first run;
  a later run whose fingerprint differs is refused. A task added later is recorded then.
- **The Optuna storage was lost beside a kept MLflow record.** A deleted ``optuna.db`` (or a
  `storage` pointed elsewhere) made a new study that numbered its trials from 0 again: two
  "trial 0" runs in MLflow, and a verdict over half the record. An Optuna study with no trials
  that was never linked to a study run (``mlflow_parent_run_id``), while MLflow holds trial
  runs of that name, is refused.

Both are user errors (exit 2), found before this run writes to MLflow.
"""

from __future__ import annotations

from typing import Any

import optuna

from sweeps import record
from sweeps.errors import StudyError

DATA_FINGERPRINTS = "data_fingerprints"  # Optuna study user attribute: task -> fingerprint
PARENT_RUN = "mlflow_parent_run_id"  # Optuna study user attribute set by the first run


def check_resumable(
    spec: Any, study: optuna.Study, tracker: Any, fingerprints: dict[str, str]
) -> None:
    """Refuse to add trials to a study whose data changed or whose Optuna trials were lost;
    record the fingerprints of tasks the study has not seen yet."""
    where = f"{spec.source}: " if spec.source else ""
    attrs = study.user_attrs
    recorded: dict[str, str] = attrs.get(DATA_FINGERPRINTS) or {}
    problems = [
        f"{where}tasks.{task}: its data or settings (a file's contents, columns, split, "
        f"rows) changed since study {spec.name!r} began (fingerprint {fingerprints[task]}, "
        f"recorded {recorded[task]}): its earlier trials and baselines were trained on "
        "other rows, and one study would rank both together; restore them, or give the "
        "study a new `name`"
        for task in sorted(fingerprints)
        if task in recorded and recorded[task] != fingerprints[task]
    ]
    if PARENT_RUN not in attrs and not study.get_trials(deepcopy=False):
        earlier = tracker.search(record.of_kind(record.TRIAL, **{record.STUDY: spec.name}))
        if earlier:
            store = "the workdir's optuna.db" if spec.storage is None else "`storage`"
            problems.append(
                f"{where}storage: study {spec.name!r} has no Optuna trials, but its MLflow "
                f"record holds {len(earlier)} trial runs: {store} was deleted or replaced, "
                "and a new study would number its trials from 0 again beside them; restore "
                "the Optuna storage, or give the study a new `name`"
            )
    if problems:
        raise StudyError(problems)
    if any(task not in recorded for task in fingerprints):
        study.set_user_attr(DATA_FINGERPRINTS, {**recorded, **fingerprints})
