"""Samplers and pruners are registry entries: each builds Optuna's own object with the study's
seed and settings, and the study file and `sweeps methods` name exactly these."""

from __future__ import annotations

import optuna
import pytest

from sweeps.runner import make_pruner, make_sampler
from sweeps.schema import SearchConfig
from sweeps.search_registry import PRUNERS, SAMPLERS
from sweeps.spec import load_spec
from tests.helpers import cli, small_study, write_study

OPTUNA = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "grid": optuna.samplers.GridSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
    "gp": optuna.samplers.GPSampler,
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
}


def _spec(tmp_path, **search):
    space = {"model.hidden_size": {"choices": [8, 16]}}
    study = small_study("reg", search={"space": space, **search}, training={"epochs": 6})
    return load_spec(write_study(tmp_path, study))


def _first_draws(sampler, n: int = 2) -> list[int]:  # 2: the grid has two points
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_categorical("model.hidden_size", [8, 16]), n_trials=n)
    return [t.params["model.hidden_size"] for t in study.trials]


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_each_sampler_entry_builds_optunas_sampler_seeded(tmp_path, name):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    spec = _spec(tmp_path, sampler=name)
    sampler = make_sampler(spec, offset=0)
    assert type(sampler) is OPTUNA[name]
    assert _first_draws(sampler) == _first_draws(make_sampler(spec, offset=0))  # seeded


@pytest.mark.parametrize("name", list(PRUNERS))
def test_each_pruner_entry_builds_optunas_pruner_with_the_warm_up(tmp_path, name):
    spec = _spec(tmp_path, pruner=name, pruner_warmup=2)
    pruner = make_pruner(spec)
    assert type(pruner) is OPTUNA[name]
    if name == "median":
        assert pruner._n_warmup_steps == 3 and pruner._n_startup_trials == 4
    if name == "hyperband":
        assert pruner._min_resource == 3 and pruner._max_resource == 6


def test_the_study_file_and_sweeps_methods_name_exactly_the_entries():
    fields = SearchConfig.model_fields
    assert set(fields["sampler"].annotation.__args__) == set(SAMPLERS)
    assert set(fields["pruner"].annotation.__args__) == set(PRUNERS)
    shown = cli("methods")
    assert shown.returncode == 0
    flat = " ".join(shown.stdout.split())
    for name in [*SAMPLERS, *PRUNERS]:
        assert name in flat
    assert "search.sampler" in flat and "search.pruner" in flat
