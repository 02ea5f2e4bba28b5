"""The factories behind ``sweeps.search_registry``: one small function per sampler and pruner,
each Optuna's own class with the study's seed and settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import optuna

from sweeps.space import grid_values

if TYPE_CHECKING:
    from sweeps.schema import StudySpec


def tpe(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed)


def random(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


def grid(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.GridSampler(grid_values(spec), seed=seed)


def cmaes(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    # categorical parameters are drawn by its independent (random) sampler
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def nsga2(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(seed=seed)


def gp(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)


def no_pruning(spec: StudySpec) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


def median(spec: StudySpec) -> optuna.pruners.BasePruner:
    # epochs 1..warmup are reported but never pruned (trial.py asks the pruner after them only)
    return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=spec.pruner_warmup + 1)


def hyperband(spec: StudySpec) -> optuna.pruners.BasePruner:
    epochs = spec.training.epochs
    return optuna.pruners.HyperbandPruner(
        min_resource=min(spec.pruner_warmup + 1, epochs), max_resource=epochs, reduction_factor=3
    )
