"""Issue 4, second part: task affinity measured during training, and the grouping
recommendation with its check against what was trained."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from mtl_core import TaskFrame, TrainConfig, fit, prepare_tasks
from mtl_core.affinity import lookahead_affinity
from mtl_core.models import build_model
from mtl_core.models.sparse_input import sparse_batch
from sweeps.groups import partitions, recommend
from sweeps.runner import run_study
from sweeps.spec import load_spec
from sweeps.trial import affinity_of
from tests.helpers import cli, small_study, write_study


def test_partitions_respect_the_budget():
    items = ["a", "b", "c", "d"]
    every = list(partitions(items, 4))
    assert len(every) == 15  # Bell(4)
    assert len(list(partitions(items, 2))) == 8  # S(4,1) + S(4,2)
    assert all(sorted(t for g in p for t in g) == items for p in every)
    assert len({tuple(sorted(p)) for p in every}) == 15  # no partition twice


def test_recommend_groups_the_pair_that_helps_and_checks_it_against_training():
    tasks = ["a", "b", "c"]
    pair = {
        "a": {"a": 0, "b": 8.0, "c": -5.0},
        "b": {"a": 6.0, "b": 0, "c": -4.0},
        "c": {"a": -3.0, "b": -2.0, "c": 0},
    }
    trained = {
        frozenset("ab"): {"a": 8.0, "b": 6.0},
        frozenset("abc"): {"a": 1.0, "b": 2.0, "c": 3.0},  # c gains here, against prediction
    }
    rec = recommend(tasks, 2, pair, trained, "pairs")
    assert rec.groups == [("a", "b"), ("c",)]
    assert rec.predicted == pytest.approx(14.0) and rec.measured == pytest.approx(14.0)
    assert rec.compared == 3  # only the 3-task set: a pair predicts itself
    assert any(line.startswith("c with a,b: predicted loss") for line in rec.disagreements)
    assert len(rec.disagreements) == 1
    alone = recommend(tasks, 1, pair, trained, "pairs")
    assert alone.groups == [("a", "b", "c")] and alone.measured == pytest.approx(6.0)


def test_lookahead_affinity_follows_its_definition():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(64, 5)), columns=list("vwxyz"))
    frame["p"] = (frame["v"] > 0).astype(int)
    frame["q"] = (frame["v"] + 0.1 * frame["w"] > 0).astype(int)  # nearly the same labels
    tasks, _ = prepare_tasks(
        {n: TaskFrame(frame=frame, inputs=list("vwxyz"), target=n, type="binary") for n in "pq"}
    )
    torch.manual_seed(0)
    model = build_model("hard_sharing", 5, [t.spec for t in tasks.values()], 8, 1, "relu", 0.0)
    rows = np.arange(40)
    batches = {
        n: (sparse_batch(t.x["train"], rows), torch.from_numpy(t.y["train"][rows]))
        for n, t in tasks.items()
    }
    specs = {n: t.spec for n, t in tasks.items()}
    before = [p.detach().clone() for p in model.parameters()]
    z = lookahead_affinity(model, batches, specs, lr=0.05)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert z["p"]["p"] > 0  # a small step on p's own loss lowers it
    # by hand: one SGD step on the shared layer for p, then q's loss
    from mtl_core.tasks import loss

    x, y = batches["q"]
    base = loss(specs["q"], model(x, "q"), y).item()
    xp, yp = batches["p"]
    grads = torch.autograd.grad(
        loss(specs["p"], model(xp, "p"), yp), list(model.trunk.parameters())
    )
    with torch.no_grad():
        for p, g in zip(model.trunk.parameters(), grads, strict=True):
            p -= 0.05 * g
        after = loss(specs["q"], model(x, "q"), y).item()
    assert z["p"]["q"] == pytest.approx(1 - after / base, rel=1e-4)


def test_measuring_affinity_leaves_training_unchanged(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=list("abcd"))
    frame["y1"] = (frame["a"] > 0).astype(int)
    frame["y2"] = (frame["b"] > 0).astype(int)
    tasks, _ = prepare_tasks(
        {
            n: TaskFrame(frame=frame, inputs=list("abcd"), target=n, type="binary")
            for n in ("y1", "y2")
        }
    )
    config = dict(hidden_size=8, epochs=3, device="cpu", schedule="joint", dropout=0.2)
    off = fit(tasks, TrainConfig(**config))
    on = fit(tasks, TrainConfig(**config, affinity_every=2))
    assert off.test == on.test  # same model: its own batches, eval mode, no in-place step
    assert off.history[-1].affinity is None
    assert set(on.history[-1].affinity) == {"y1", "y2"}


def test_trials_log_affinities_and_groups_use_them(tmp_path):
    study = small_study("aff", training={"epochs": 2, "affinity_every": 5}, search={"n_trials": 1})
    path = write_study(tmp_path, study)
    spec = load_spec(path)
    run_study(spec)
    client = MlflowClient(spec.tracking)
    exp = client.get_experiment_by_name("aff").experiment_id
    (trial,) = client.search_runs([exp], "tags.`mtl.kind` = 'trial'")
    tasks = ["amazon", "imdb", "yelp"]
    for i in tasks:
        for j in tasks:
            history = client.get_metric_history(trial.info.run_id, f"affinity/{i}/{j}")
            assert [m.step for m in history] == [1, 2]
    assert "affinity.csv" in [a.path for a in client.list_artifacts(trial.info.run_id)]
    (ot,) = optuna.load_study(study_name="aff", storage=spec.optuna_storage).trials
    # one line of JSON (optuna-dashboard drew the nested value 3,000 pixels tall), read back
    assert isinstance(ot.user_attrs["affinity"], str) and "\n" not in ot.user_attrs["affinity"]
    assert set(affinity_of(ot.user_attrs["affinity"])) == set(tasks)
    assert affinity_of({"a": {"b": 1.0}}) == {"a": {"b": 1.0}}  # a study begun before: as it was
    # baselines do not measure affinity and share keys with studies that do not either
    baselines = client.search_runs([exp], "tags.`mtl.kind` = 'baseline'")
    assert len(baselines) == 3 and not any(
        "affinity/" in k for b in baselines for k in b.data.metrics
    )
    result = cli("groups", str(path), "--source", "affinity", "--budget", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "recommended grouping" in result.stdout and "predicted total" in result.stdout


def test_groups_says_what_is_missing(tmp_path):
    study = small_study("missing", training={"epochs": 1})
    path = write_study(tmp_path, study)
    pairs = cli("groups", str(path), cwd=tmp_path)
    assert pairs.returncode == 2 and "sweeps transfer" in pairs.stderr
    affinity = cli("groups", str(path), "--source", "affinity", cwd=tmp_path)
    assert affinity.returncode == 2 and "training.affinity_every" in affinity.stderr
    bad = cli("groups", str(path), "--source", "vibes", cwd=tmp_path)
    assert bad.returncode == 2 and "--source" in bad.stderr
