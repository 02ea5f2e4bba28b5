"""Tuned single-task baselines: an Optuna study per task over the study's own search space.

A baseline that was never tuned flatters multi-task learning: a shared network may only seem
to help because the single-task model ran with settings chosen for the multi-task one. In
``baselines.mode: tuned`` each task's single-task model gets ``baselines.trials`` trials of
its own over the model and training settings of ``search.space`` (the schedule, the weighting
and the task set mean nothing for one task and are left out). The trial with the best
validation value of the task's primary metric wins. The tuning study lives in the study's
Optuna storage under ``<study>.baseline.<task>.<key>``, so a re-run or another worker finds it
and adds nothing once it holds enough trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from mtl_core.config import single_task_config
from mtl_core.tasks import higher_is_better
from sweeps.schema import StudySpec
from sweeps.space import TrialConfig, config_from_params, sample, tuning_space
from sweeps.study_data import StudyData, data_for


@dataclass
class TuningOutcome:
    study_name: str
    best_number: int
    best_value: float
    config: TrialConfig


def tune(
    spec: StudySpec, data: StudyData, task: str, key: str, on_train: Sequence[Any] = ()
) -> TuningOutcome:
    # here, not at the top: torch loads only when this runs
    from mtl_core.train import fit

    metric = data.tasks[task].spec.metric
    name = f"{spec.name}.baseline.{task}.{key[:12]}"
    study = optuna.create_study(
        study_name=name,
        storage=spec.optuna_storage,
        load_if_exists=True,
        direction="maximize" if higher_is_better(metric) else "minimize",
        sampler=optuna.samplers.TPESampler(seed=spec.seed),
    )
    narrowed = spec.model_copy(
        update={"search": spec.search.model_copy(update={"space": tuning_space(spec)})}
    )
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    while len(study.get_trials(deepcopy=False, states=done)) < spec.baselines.trials:
        trial = study.ask()
        config = sample(trial, narrowed)
        single = single_task_config(config.train_config(spec.seed))
        try:
            data_of = data_for(spec, config.features, data, config.options)
            result = fit(data_of.subset([task]), single, on_train)
        except Exception as exc:  # a setting that cannot train loses; the tuning goes on
            trial.set_user_attr("reason", f"{type(exc).__name__}: {exc}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        study.tell(trial, result.valid[task][metric])
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise RuntimeError(f"tuning the baseline of task {task!r}: no trial could train")
    best = study.best_trial
    config = config_from_params(spec, [task], best.params)
    return TuningOutcome(name, best.number, float(best.value), config)
