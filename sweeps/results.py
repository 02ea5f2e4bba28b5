"""A study's results as one table: a row per trial, confirm and baseline run (column ``kind``),
read from MLflow in one search; what ``Study.results()`` returns and ``sweeps export`` writes.

Columns, in this order: ``kind``, ``trial`` (a trial's number; the search trial a confirm run
re-trains; the trial whose worker trained a baseline), ``state``, ``tasks`` (a baseline's one
task), ``seed`` (baselines), ``run_id``; then every param under its dotted name (numbers as
numbers); then every one-number metric, with the split in its name:

- ``valid/delta_m`` (the objective), ``test/delta_m``, ``test/delta/TASK``,
  ``selected/valid/delta/TASK`` and ``selected/valid/TASK/METRIC`` (the scored epoch's
  validation figures), ``test/TASK/METRIC``, ``baseline/valid/TASK/METRIC``, and
  ``baseline/test/TASK/METRIC`` for what MLflow holds as ``baseline/TASK/METRIC`` (a test
  figure); ``best_epoch``, ``time/...``, ``data/...``; each with its ``_std``, ``_ci95`` and
  ``_significant`` over seeds where the run has them.
- Left out: ``delta_m`` and ``delta/TASK`` (the same values as ``test/delta_m`` and
  ``test/delta/TASK``, without the split in the name), and the per-epoch series (``valid/TASK/
  METRIC``, ``valid/delta/TASK``, ``train/...``, ``weight/...``, measurements), whose last value
  is not the scored one: MLflow's metric history holds them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from sweeps import record

KINDS = (record.TRIAL, record.CONFIRM, record.BASELINE)
FRONT = ["kind", "trial", "state", "tasks", "seed", "run_id"]
_SERIES = (
    "valid/",
    "train/",
    "weight/",
    "affinity/",
    "grad_norm/",
    "grad_cos/",
    "pruner/",
) + record.METHOD_COUNTER_PREFIXES
_SUFFIXES = (record.STD, record.CI95, record.SIGNIFICANT)


def column_name(metric: str) -> str | None:
    """The table's name for an MLflow metric, or None where the table leaves it out."""
    base = metric
    for suffix in _SUFFIXES:
        if metric.endswith(suffix):
            base = metric.removesuffix(suffix)
            break
    tail = metric[len(base) :]
    if base == record.DELTA_M or base.startswith("delta/"):
        return None  # the same value is there as test/delta_m, test/delta/TASK
    if base == record.VALID_DELTA_M:
        return metric
    if base.startswith(_SERIES) or base.startswith("features/") or base == record.LR:
        return None  # per epoch: the last value is not the scored one
    if base.startswith("baseline/") and not base.startswith("baseline/valid/"):
        return "baseline/test/" + base.removeprefix("baseline/") + tail
    return metric


def _trial_of(run: Any) -> int | None:
    tags = run.data.tags
    value = (
        tags.get(record.TRIAL_NUMBER)
        or tags.get(record.CONFIRMS)
        or tags.get(record.TRAINED_IN_TRIAL, "").removeprefix("confirm:")
    )
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _number(value: str) -> Any:
    if value == "None":  # MLflow's text of a setting left unset (max_features: null)
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value else number


def results_frame(runs: Iterable[Any]) -> pd.DataFrame:
    """The table of the study's trial, confirm and baseline runs (see the module)."""
    rows, metric_columns = [], set()
    for run in runs:
        kind = record.kind_of(run)
        if kind not in KINDS:
            continue
        tags, params = run.data.tags, run.data.params
        row: dict[str, Any] = {
            "kind": kind,
            "trial": _trial_of(run),
            "state": tags.get(record.STATE) or run.info.status,
            "tasks": tags.get(record.TASK) if kind == record.BASELINE else tags.get(record.TASKS),
            # a confirm run's seeds are its `confirm.seeds` param
            "seed": _number(seed)
            if kind != record.CONFIRM and (seed := tags.get(record.SEED, params.get("seed")))
            else None,
            "run_id": run.info.run_id,
        }
        row.update({k: _number(v) for k, v in params.items() if k not in FRONT})
        for metric, value in run.data.metrics.items():
            name = column_name(metric)
            if name is not None:
                row[name] = value
                metric_columns.add(name)
        if kind == record.BASELINE and row["state"] == "FINISHED":
            row["state"] = "COMPLETE"
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=FRONT)
    order = {kind: i for i, kind in enumerate(KINDS)}
    frame = frame.sort_values(
        ["kind", "trial", "tasks", "seed"],
        key=lambda c: c.map(order) if c.name == "kind" else c,
        na_position="last",
    ).reset_index(drop=True)
    metrics = sorted(metric_columns)
    params = sorted(c for c in frame.columns if c not in FRONT and c not in metric_columns)
    frame["trial"] = frame["trial"].astype("Int64")
    return frame[FRONT + params + metrics]
