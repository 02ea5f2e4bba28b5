"""Known-truth tests (issue 4): on synthetic tasks where `a` and `b` share their labelling
function and `c` does not, the pair matrix, the affinities and the grouping must say so."""

from __future__ import annotations

import optuna
import pytest

from mtl_core.data.synthetic import related_tasks
from sweeps.spec import load_spec
from sweeps.transfer_matrix import matrix_from_store
from sweeps.trial import affinity_of
from tests.helpers import cli, write_study


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    folder = tmp_path_factory.mktemp("known")
    frames = related_tasks(seed=0)
    tasks = {}
    for name, splits in frames.items():
        paths = {}
        for split, frame in splits.items():
            path = folder / f"{name}_{split}.csv"
            frame.to_csv(path, index=False)
            paths[split] = path.name
        columns = [c for c in splits["train"].columns if c != "label"]
        tasks[name] = {"path": paths["train"], "split": paths, "inputs": columns,
                       "target": "label", "type": "binary", "metric": "accuracy"}  # fmt: skip
    study = {
        "name": "known",
        "seed": 0,
        "tasks": tasks,
        "model": {"hidden_size": 1, "activation": "tanh"},  # a narrow shared layer
        "training": {
            "epochs": 30,
            "batch_size": 16,
            "lr": 0.01,
            "schedule": "joint",
            "affinity_every": 2,
        },  # fmt: skip
        "search": {"n_trials": 1, "sampler": "random", "pruner": "none"},
    }
    path = write_study(folder, study)
    for command in (("run", str(path)), ("transfer", str(path), "--settings", "fixed")):
        result = cli(*command, cwd=folder)
        assert result.returncode == 0, result.stderr
    return folder, path


def test_the_matrix_shows_the_related_pair_helping_and_the_unrelated_not(known):
    _, path = known
    matrix = matrix_from_store(load_spec(path))
    assert matrix.mean("a", "b") > 2 and matrix.mean("b", "a") > 2  # positive transfer
    assert matrix.mean("a", "c") <= 0.5 and matrix.mean("b", "c") <= 0.5  # negative or none
    assert matrix.mean("a", "c") < matrix.mean("a", "b")


def test_the_affinities_agree(known):
    _, path = known
    spec = load_spec(path)
    (trial,) = optuna.load_study(study_name="known", storage=spec.optuna_storage).trials
    z = affinity_of(trial.user_attrs["affinity"])  # z[i][j]: a step on i's loss helps j
    # a step for the related task helps more than a step for the unrelated one (averaged
    # over 30 epochs, most of them near convergence, the values themselves are near zero)
    assert z["b"]["a"] > z["c"]["a"] and z["a"]["b"] > z["c"]["b"]


@pytest.mark.parametrize("source", ["pairs", "affinity"])
def test_the_recommendation_groups_the_related_pair(known, source):
    folder, path = known
    result = cli("groups", str(path), "--budget", "2", "--source", source, cwd=folder)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    groups = {line.split("│")[2].strip() for line in rows}
    assert groups == {"a,b", "c"}, result.stdout
