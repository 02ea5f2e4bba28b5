"""A study that names its own trunk, `model.trunk: {factory: "module:function", OPTION: V}`,
with the module file beside the study: validated before anything is written, trained by the
real command (trials and baselines alike), recorded with its options as params, and its model
predicts; a factory that cannot be found or called is refused with its field named."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import assert_refused, cli, small_study, two_tasks, write_study

FACTORY = """
from torch import nn


def two_layers(width=32, input_shape=None):
    return nn.Sequential(
        nn.Linear(input_shape[0], width), nn.ReLU(), nn.Linear(width, width), nn.ReLU()
    )
"""


@pytest.fixture
def module(tmp_path, monkeypatch):
    """A module file of the user's beside the study, under a name of this test's own."""
    name = f"trunks_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(FACTORY)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the study's folder leaves with the test
    yield name
    sys.modules.pop(name, None)


def _study(tmp_path, trunk) -> None:
    study = two_tasks(small_study("own_trunk", model={"hidden_size": 16, "trunk": trunk}))
    study["training"]["epochs"] = 1
    study["search"]["n_trials"] = 1
    write_study(tmp_path, study)


def test_a_study_trains_and_records_its_own_trunk_and_its_model_predicts(tmp_path, module):
    _study(tmp_path, {"factory": f"{module}:two_layers", "width": 24})
    checked = cli("validate", "study.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    ran = cli("run", "study.yaml", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / '.sweeps' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("own_trunk").experiment_id
    (trial,) = client.search_runs([experiment], "tags.`mtl.kind` = 'trial'")
    baselines = client.search_runs([experiment], "tags.`mtl.kind` = 'baseline'")
    assert trial.data.tags["mtl.state"] == "COMPLETE" and "delta_m" in trial.data.metrics
    assert len(baselines) == 2
    for run in (trial, *baselines):
        assert run.data.params["model.trunk"] == f"{module}:two_layers"
        assert run.data.params["model.trunk_options.width"] == "24"
    (tmp_path / "new.csv").write_text("text\ngreat phone, works well\nawful, broke in a day\n")
    predicted = cli("predict", "study.yaml", "--input", "new.csv", "--out", "p.csv", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    out = pd.read_csv(tmp_path / "p.csv")
    assert len(out) == 2 and {"imdb", "yelp"} <= set(out.columns)


@pytest.mark.parametrize(
    ("trunk", "needles"),
    [
        ({"factory": "{m}:nope"}, ["model.trunk.factory", "has no 'nope'"]),
        ({"factory": "not_installed_anywhere:f"}, ["model.trunk.factory", "is not found in"]),
        ({"factory": "{m}:two_layers", "depth": 3}, ["unexpected keyword argument 'depth'"]),
        ({"width": 3}, ["a mapping names the user's trunk as `factory: package.module:function`"]),
        ({"factory": "a b"}, ["trunk.factory: 'a b' is not 'package.module:function'"]),
        ({"factory": "{m}:two_layers", "width": [1]}, ["trunk.width: an option is a number"]),
        ("cnn", ["'auto', 'mlp' or 'conv'", "nor a factory of your own trunk"]),
    ],
)
def test_a_trunk_that_cannot_be_built_is_refused_naming_the_field(tmp_path, module, trunk, needles):
    if isinstance(trunk, dict):
        trunk = {k: v.replace("{m}", module) if isinstance(v, str) else v for k, v in trunk.items()}
    _study(tmp_path, trunk)
    assert_refused(cli("run", "study.yaml", cwd=tmp_path), needles, tmp_path)


def test_options_go_with_a_factory_only():
    """A searched trunk that draws mlp trains, logs and keys without the factory's options."""
    from sweeps.schema import ModelConfig

    assert (
        ModelConfig.model_validate({"trunk": "mlp", "trunk_options": {"width": 3}}).trunk_options
        == {}
    )
    named = ModelConfig.model_validate({"trunk": {"factory": "pkg.mod:make", "width": 3}})
    assert (named.trunk, named.trunk_options) == ("pkg.mod:make", {"width": 3})
