"""No configuration trained twice. A sampler may draw settings a finished trial already trained
(TPE and random do, over small categorical spaces: the sentiment example drew one three times).
Such a trial is not trained again: it takes the earlier trial's result, as a baseline is reused
by its key.

- The key (``config_key``) is a digest of everything that makes two trials train the same
  models: every effective setting, sampled or fixed (``TrialConfig.params``: tasks, model,
  training, features, the seed and seeds), the data of its tasks (their files and settings,
  split included), the fitted feature space and the study's baselines section (tuned mode's
  trials and space change what a Δ is measured against). A trial recorded before keys were
  gets its key from its parameters. A COMPLETE trial of the study with the same
  ``config_key`` user attribute is its original (the earliest, when several are).
- In Optuna the trial is COMPLETE with the original's value(s) and per-epoch intermediate
  values, so the sampler and the pruner learn from it as if it had trained; it carries the
  original's result attributes and ``reuses`` (the original's number).
- In MLflow its run is FINISHED with ``mtl.state=REUSED`` and ``mtl.reuses=N``, its name ending
  ``· same as trial N``, its params and time metrics but none of the original's figures: a
  repeated configuration is no new evidence, so the pair matrix, the report's counts, the
  dashboard's figures and the winner count the original once (``record.is_complete`` is False
  for it).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps import record

CONFIG_KEY = "config_key"  # Optuna user attribute of every trial that trained
REUSES = "reuses"  # Optuna user attribute of a trial that took an earlier one's result
RESULT_ATTRS = ("delta_m", "valid_delta_m", "deltas", "significant", "affinity")


def config_key(config: Any, data: Any, baselines: Any = None) -> str:
    """The digest of what a trial trains and is compared with (see the module);
    ``baselines``: the study's baselines section (tuned mode's trials and space change the
    baselines a Δ is measured against)."""
    payload = {
        "params": config.params,
        "data": {t: data.fingerprints[t] for t in config.tasks},
        "features": data.space.fingerprint(),
        "baselines": baselines,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def original_of(
    study: optuna.Study,
    key: str,
    number: int,
    key_of: Callable[[FrozenTrial], str] | None = None,
) -> FrozenTrial | None:
    """The earliest COMPLETE trial (before ``number``) that trained this configuration;
    ``key_of`` gives the key of a trial recorded before keys were (no ``config_key``)."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.number >= number or REUSES in t.user_attrs:
            continue
        recorded = t.user_attrs.get(CONFIG_KEY)
        if recorded is None and key_of is not None:
            recorded = key_of(t)
        if recorded == key:
            return t
    return None


def take_result(
    ctx: Any,
    trial: optuna.Trial,
    original: FrozenTrial,
    key: str,
    run_id: str,
    started: float,
    name: str,
) -> tuple[float | list[float], dict[str, Any]]:
    """Give ``trial`` the result of ``original`` (see the module) and close its run; returns
    the objective value(s) and the result attributes taken."""
    for step, value in sorted(original.intermediate_values.items()):
        trial.report(value, step)
    taken = {k: original.user_attrs[k] for k in RESULT_ATTRS if k in original.user_attrs}
    for key, value in taken.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr(REUSES, original.number)
    trial.set_user_attr(CONFIG_KEY, key)
    note = f"same settings as trial {original.number}: its result, not trained again"
    trial.set_user_attr("reason", note)
    seconds = time.perf_counter() - started
    ctx.tracker.log(run_id, metrics=record.time_metrics(0.0, 0.0, seconds))
    ctx.tracker.end_run(
        run_id,
        "FINISHED",
        {record.STATE: record.REUSED, record.REUSES: str(original.number)},
        f"{name} · same as trial {original.number}",
    )
    values = original.values if len(original.values) > 1 else original.value
    return values, {**taken, "note": note}
