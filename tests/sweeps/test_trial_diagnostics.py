"""Issue 4, third part: the diagnostics a trial logs with `training.diagnostics_every`."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient

from mtl_core.diagnostics import cross_task_scores, feature_importance, top_features
from mtl_core.train import TrainConfig, fit
from sweeps.runner import run_study
from sweeps.spec import load_spec
from sweeps.study_data import load_study_data
from tests.helpers import small_study, write_study


def _study(tmp_path, **training):
    study = small_study("diag", training={"epochs": 2, **training}, search={"n_trials": 1})
    study["tasks"].pop("amazon")
    return load_spec(write_study(tmp_path, study))


def test_cross_task_scores_of_a_task_through_its_own_head_are_its_test_scores(tmp_path):
    spec = _study(tmp_path)
    data = load_study_data(spec)
    tasks = data.subset(["imdb", "yelp"])
    result = fit(tasks, TrainConfig(hidden_size=16, epochs=2, device="cpu"))
    own = cross_task_scores(
        result.model, "imdb", data.tasks["imdb"].spec, data.tasks["imdb"], "test", "cpu"
    )
    assert own == pytest.approx(result.test["imdb"])
    importance = feature_importance(result.model)
    names = data.space.feature_names()
    assert importance.shape == (len(names),) and (importance >= 0).all()
    top = top_features(importance, names, 5)
    assert top[0] == names[int(np.argmax(importance))] and all(n.startswith("text:") for n in top)


def test_a_trial_logs_its_diagnostics(tmp_path):
    spec = _study(tmp_path, diagnostics_every=3)
    run_study(spec)
    client = MlflowClient(spec.tracking)
    exp = client.get_experiment_by_name("diag").experiment_id
    (run,) = client.search_runs([exp], "tags.`mtl.kind` = 'trial'")
    m = run.data.metrics
    norms = [k for k in m if k.startswith("grad_norm/")]
    assert "grad_norm/trunk.0.weight" in norms and "grad_norm/heads.imdb.weight" in norms
    cos = client.get_metric_history(run.info.run_id, "grad_cos/imdb/yelp")
    assert [p.step for p in cos] == [1, 2] and all(-1 <= p.value <= 1 for p in cos)
    for task in ("imdb", "yelp"):
        assert -1 <= m[f"features/{task}/spearman"] <= 1
    for a, b in (("imdb", "yelp"), ("yelp", "imdb")):
        for prefix in ("cross", "cross_single"):
            assert 0 <= m[f"{prefix}/{a}_via_{b}/f1"] <= 1
    assert m["time/diagnostics_s"] > 0
    path = client.download_artifacts(run.info.run_id, "features.json", str(tmp_path))
    report = json.loads(open(path).read())
    assert len(report["multi"]) == 20 and set(report["single"]) == {"imdb", "yelp"}
    assert report["spearman"]["imdb"] == pytest.approx(m["features/imdb/spearman"])
    # the baselines measured nothing and kept their keys
    (trial,) = optuna.load_study(study_name="diag", storage=spec.optuna_storage).trials
    baselines = client.search_runs([exp], "tags.`mtl.kind` = 'baseline'")
    assert not any(k.startswith("grad_") for b in baselines for k in b.data.metrics)
    assert trial.state == optuna.trial.TrialState.COMPLETE
