"""What a study's trials add up to: which count towards the target, the best one, the
Pareto front. Imports optuna only, so ``sweeps status`` stays light."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

# heartbeats, fail_stale_trials and the retry callback are marked experimental in Optuna
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def counts(trial: FrozenTrial) -> bool:
    """Whether a trial counts towards the study's target (see the module's docstring)."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    attrs = trial.user_attrs
    if attrs.get("surplus") or attrs.get("not_counted"):  # interrupted, or the store was down
        return False
    return trial.state == TrialState.FAIL and "reason" in attrs


def count_finished(study: optuna.Study) -> int:
    return sum(counts(t) for t in study.get_trials(deepcopy=False))


def best_of(
    study: optuna.Study, trials: Sequence[FrozenTrial] | None = None
) -> tuple[int | None, float | None]:
    """The complete trial with the best validation Δm (the objective, or the mean of the
    per-task objectives); ``trials``: the study's, when the caller has read them already
    (each read of 1,000 trials from SQLite costs 0.3 s)."""
    if trials is None:
        trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    scored = [t for t in complete if valid_delta_m(t) is not None]
    if not scored:
        return None, None
    best = max(scored, key=valid_delta_m)
    return best.number, valid_delta_m(best)


def valid_delta_m(trial: FrozenTrial) -> float | None:
    if "valid_delta_m" in trial.user_attrs:
        return trial.user_attrs["valid_delta_m"]
    return trial.values[0] if trial.values and len(trial.values) == 1 else None


def pareto_front(study: optuna.Study) -> list[int]:
    """The trials on the front, each configuration once: a trial that took an earlier one's
    result (``reuses``, sweeps.reuse) repeats a point already there."""
    if len(study.directions) < 2:
        return []
    return sorted(t.number for t in study.best_trials if "reuses" not in t.user_attrs)
