"""The registry is the one list of methods: every entry loads, takes the hyperparameters it
declares, and the study file, the training configuration and `sweeps methods` follow it."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from mtl_core.registry import CATALOGUE, WEIGHTINGS, method_params
from mtl_core.train import TrainConfig
from sweeps.spec import ModelConfig, TrainingConfig
from tests.helpers import cli

ENTRIES = [(kind, name) for kind, reg in CATALOGUE.items() for name in reg if reg[name].target]


@pytest.mark.parametrize(("kind", "name"), ENTRIES)
def test_every_entry_loads_and_takes_its_declared_hyperparameters(kind, name):
    entry = CATALOGUE[kind][name]
    code = entry.load()
    assert entry.description and len(entry.description) < 130
    accepted = inspect.signature(code).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    for param in entry.params:
        assert param.keyword in accepted, (name, param.keyword)
        low = param.ge if param.ge is not None else param.gt
        assert low is None or param.default >= low
        assert param.gt is None or param.default > param.gt
        assert param.le is None or param.default <= param.le
        assert isinstance(param.default, int | float) and param.help
    assert entry.params or not takes_any or kind == "schedule"


def test_each_hyperparameter_is_one_setting_of_the_study_and_of_train_config():
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for section, model in (("model", ModelConfig), ("training", TrainingConfig)):
        for param in method_params(section):
            assert model.model_fields[param.name].default == param.default
            assert fields[param.name] == param.default
    names = [p.name for s in ("model", "training") for p in method_params(s)]
    assert len(names) == len(set(names)), "two methods declare one setting name"
    with pytest.raises(ValueError, match="dwa_temperature"):
        TrainingConfig(dwa_temperature=0)
    assert TrainingConfig(stch_warmup=3).train_values()["stch_warmup"] == 3


def test_a_hyperparameter_reaches_its_method():
    from mtl_core.gradients import GradientMethod
    from mtl_core.weighting import build_weighting

    assert build_weighting("dwa", ["a", "b"], {}, {}, dwa_temperature=7.0).tau == 7.0
    assert build_weighting("gradnorm", ["a", "b"], {}, {}, gradnorm_alpha=0.25).alpha == 0.25
    cagrad = GradientMethod("cagrad", ["a", "b"], cagrad_c=0.125).aggregator
    assert "0.125" in repr(cagrad)


def test_sweeps_methods_lists_every_entry_with_its_settings():
    result = cli("methods")
    assert result.returncode == 0, result.stderr
    flat = " ".join(result.stdout.split())
    for name in WEIGHTINGS:
        assert name in flat
    for param in method_params("training"):
        assert f"training.{param.name}" in flat, param.name
