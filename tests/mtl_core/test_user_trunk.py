"""Your own trunk: a module, a callable or a factory named 'package.module:function' is the
shared part of every architecture; its features' width is what the heads read; copies
(experts, towers) start apart; sparse text reaches it dense; a model built on a named factory
saves and loads; names that cannot be found or called say why."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from mtl_core import TaskFrame, TextFeatures, TrainConfig, fit, prepare_tasks
from mtl_core.data.arrays import tasks_from_arrays
from mtl_core.models import ARCHITECTURES, build_model
from mtl_core.models.user_trunk import UserTrunk
from mtl_core.saved_model import ModelFileError, TrainedModel
from mtl_core.tasks import TaskSpec, TaskType
from mtl_core.trunk_factory import FactoryError, arguments, resolve

SPECS = [
    TaskSpec("a", TaskType.binary, "f1", ("0", "1")),
    TaskSpec("b", TaskType.regression, "mse"),
]
FACTORIES = """
from torch import nn

def narrow(width=16, input_shape=None):
    return nn.Sequential(nn.Linear(input_shape[0], width), nn.ReLU())

def not_a_module(input_shape=None):
    return 3

NOT_CALLABLE = 3
"""


@pytest.fixture
def factories(tmp_path, monkeypatch):
    """A module of factories in a folder of its own (as beside a study file)."""
    name = f"my_trunks_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(FACTORIES))
    monkeypatch.setattr(sys, "path", list(sys.path))  # resolve's folder leaves with the test
    yield tmp_path, name
    sys.modules.pop(name, None)


def _tasks(rows: int = 300):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 6)).astype(np.float32)
    return tasks_from_arrays(
        x, {"a": ((x[:, 0] > 0).astype(int), "binary"), "b": (x[:, 1] * 2, "regression")}
    )


def test_a_module_is_the_shared_trunk_and_its_width_sizes_the_heads():
    trunk = nn.Sequential(nn.Linear(6, 12), nn.Tanh())
    model = build_model("hard_sharing", 6, SPECS, 200, 3, "relu", 0.0, trunk=trunk)
    assert {id(p) for p in model.shared_parameters()} == {id(p) for p in trunk.parameters()}
    assert model.heads["a"].in_features == 12  # the module's width, not hidden_size 200
    assert model(torch.randn(4, 6), "b").shape == (4, 1)


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_every_architecture_takes_a_callable_and_its_copies_start_apart(architecture):
    torch.manual_seed(0)
    made = []

    def factory(input_shape):
        made.append(nn.Linear(input_shape[0], 5))
        return nn.Sequential(made[-1], nn.ReLU())

    model = build_model(architecture, 6, SPECS, 8, 1, "relu", 0.0, trunk=factory, experts=3)
    used = [m for m in made if any(p is q for p in m.parameters() for q in model.parameters())]
    assert used, "the factory's module is not in the model"
    assert len({m.weight.data_ptr() for m in used}) == len(used)
    if len(used) > 1:  # experts, towers: each its own call, so their weights differ
        assert not torch.equal(used[0].weight, used[1].weight)
    assert model(torch.randn(3, 6), "a").shape == (3, 1)


def test_copies_of_a_module_are_reset_so_that_experts_start_apart():
    trunk = nn.Sequential(nn.Linear(6, 5), nn.ReLU())
    model = build_model("mmoe", 6, SPECS, 8, 1, "relu", 0.0, trunk=trunk, experts=3)
    weights = [e[0][0].module[0].weight for e in model.experts]
    assert weights[0] is trunk[0].weight
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])


@pytest.mark.parametrize(("weighting", "gradients"), [("equal", "parameters"),
                         ("pcgrad", "parameters"), ("mgda", "features")])  # fmt: skip
def test_fit_trains_both_tasks_on_a_named_factory(factories, weighting, gradients):
    folder, name = factories
    resolve(f"{name}:narrow", folder)  # puts the folder on sys.path, as a study does
    config = TrainConfig(trunk=f"{name}:narrow", trunk_options={"width": 24}, epochs=8, lr=0.02,
                         schedule="joint", weighting=weighting, gradients=gradients)  # fmt: skip
    result = fit(_tasks(), config)
    assert result.model.trunk[0].module[0].out_features == 24
    assert result.valid["a"]["accuracy"] > 0.85


def test_sparse_text_reaches_the_module_dense():
    rng = np.random.default_rng(0)
    words = np.array(["good", "bad", "fine", "awful", "great", "dull"])
    frame = pd.DataFrame({"text": [" ".join(rng.choice(words, 4)) for _ in range(240)]})
    frame["label"] = frame.text.str.count("good|great") > frame.text.str.count("bad|awful")
    tasks, _ = prepare_tasks(
        {"s": TaskFrame(inputs="text", target="label", type="binary", frame=frame)},
        text={"text": TextFeatures()},
    )
    seen = []

    class Recorder(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.linear = nn.Linear(width, 8)

        def forward(self, x):
            seen.append(x)
            return torch.relu(self.linear(x))

    width = tasks["s"].input_shape[0]
    result = fit(tasks, TrainConfig(trunk=Recorder(width), epochs=6, lr=0.05))
    assert all(isinstance(x, torch.Tensor) and x.shape[1] == width for x in seen)
    rows = tasks["s"].x["train"][:3].toarray()
    trunk = UserTrunk(nn.Identity(), (width,))
    from mtl_core.models.sparse_input import input_batch

    assert np.array_equal(trunk(input_batch(tasks["s"].x["train"], np.arange(3))).numpy(), rows)
    assert result.valid["s"]["accuracy"] > 0.8


def test_a_model_on_a_named_factory_saves_and_loads_and_a_module_is_refused(factories, tmp_path):
    folder, name = factories
    resolve(f"{name}:narrow", folder)
    tasks = _tasks()
    config = TrainConfig(trunk=f"{name}:narrow", trunk_options={"width": 9}, epochs=2)
    result = fit(tasks, config)
    specs = [t.spec for t in tasks.values()]
    saved = TrainedModel.from_fit(result.model, config, specs, (6,), None)
    folder = saved.save(tmp_path / "m")
    back = TrainedModel.load(folder, trusted={f"{name}:narrow"})
    x = torch.from_numpy(tasks["a"].x["test"])
    with torch.no_grad():
        assert torch.equal(saved.model.eval()(x, "a"), back.model.eval()(x, "a"))
    instance = TrainConfig(trunk=nn.Sequential(nn.Linear(6, 4)), epochs=1)
    plain = TrainedModel.from_fit(fit(tasks, instance).model, instance, specs, (6,), None)
    with pytest.raises(ValueError, match="cannot be saved: name the trunk by its factory"):
        plain.save(tmp_path / "n")
    assert not (tmp_path / "n").exists()


def test_a_saved_factory_runs_only_when_trusted(factories, tmp_path, monkeypatch):
    """model.json names code: a planted `os:system` with a command is refused, not run."""
    folder, name = factories
    resolve(f"{name}:narrow", folder)
    tasks = _tasks(60)
    config = TrainConfig(trunk=f"{name}:narrow", trunk_options={"width": 4}, epochs=1)
    specs = [t.spec for t in tasks.values()]
    saved = TrainedModel.from_fit(fit(tasks, config).model, config, specs, (6,), None)
    model_dir = saved.save(tmp_path / "m")
    with pytest.raises(ModelFileError, match="its trunk is code of the user's"):
        TrainedModel.load(model_dir)
    monkeypatch.setenv("MTL_TRUSTED_TRUNKS", f"other:f,{name}:narrow")
    assert TrainedModel.load(model_dir).model is not None
    monkeypatch.delenv("MTL_TRUSTED_TRUNKS")
    marker = tmp_path / "ran"
    described = json.loads((model_dir / "model.json").read_text())
    described["build"]["trunk"] = "os:system"
    described["build"]["trunk_options"] = {"command": f"touch {marker}"}
    (model_dir / "model.json").write_text(json.dumps(described))
    with pytest.raises(ModelFileError, match=r"its trunk is code of the user's \(os:system\)"):
        TrainedModel.load(model_dir)
    assert not marker.exists()


def test_factories_that_cannot_be_found_or_called_say_why(factories):
    folder, name = factories
    with pytest.raises(FactoryError, match="is not found in .* nor among the installed packages"):
        resolve("no_such_module_here:f", folder)
    with pytest.raises(FactoryError, match=f"module '{name}' has no 'missing'"):
        resolve(f"{name}:missing", folder)
    with pytest.raises(FactoryError, match="is a int, not a function or class"):
        resolve(f"{name}:NOT_CALLABLE", folder)
    with pytest.raises(FactoryError, match="not 'package.module:function'"):
        resolve("not a name", folder)
    narrow = resolve(f"{name}:narrow", folder)
    with pytest.raises(FactoryError, match="do not fit its signature"):
        arguments(narrow, {"depth": 3})
    assert arguments(narrow, {"width": 3}, (6,), 10) == {"width": 3, "input_shape": (6,)}
    with pytest.raises(TypeError, match="returned a int, not a torch.nn.Module"):
        build_model("hard_sharing", 6, SPECS, 8, 1, "relu", 0.0, trunk=f"{name}:not_a_module")
