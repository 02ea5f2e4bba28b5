"""The real `sweeps run` on a 4-trial study: what lands in Optuna and MLflow, tag by tag and
metric by metric; then a re-run that extends the study and reuses every baseline."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import cli, small_study, sweeps, write_study

EPOCHS = 2
SPACE = {
    "model.hidden_size": {"choices": [8, 16]},
    "training.lr": {"low": 0.001, "high": 0.01, "log": True},
    "training.schedule": {"choices": ["joint", "round_robin", "alternate"]},
    "training.weighting": {"choices": ["equal", "inverse_size"]},
    "tasks": {"subsets": {"min_size": 2, "include": ["imdb"]}},
}


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("e2e")
    study = small_study(
        "e2e", search={"n_trials": 4, "sampler": "random", "pruner": "none", "space": SPACE}
    )
    write_study(folder, study)
    result = sweeps("run", "study.yaml", cwd=folder)
    assert result.returncode == 0, result.stderr
    (folder / "first_run.out").write_text(result.stdout)
    return folder


@pytest.fixture(scope="module")
def client(study_dir) -> MlflowClient:
    return MlflowClient(f"sqlite:///{study_dir / '.sweeps' / 'mlflow.db'}")


@pytest.fixture(scope="module")
def experiment_id(client) -> str:
    experiment = client.get_experiment_by_name("e2e")
    assert experiment is not None
    return experiment.experiment_id


def runs_of(client, experiment_id, kind: str):
    return client.search_runs([experiment_id], f"tags.`mtl.kind` = '{kind}'", max_results=1000)


def test_prints_where_to_look(study_dir):
    out = (study_dir / "first_run.out").read_text()
    assert "sweeps ui" in out
    assert "dashboard" in out and str(study_dir / ".sweeps" / "dashboard.html") in out
    assert "best by validation: trial" in out


def test_optuna_holds_four_finished_trials(study_dir):
    study = optuna.load_study(
        study_name="e2e", storage=f"sqlite:///{study_dir / '.sweeps' / 'optuna.db'}"
    )
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert set(t.params) == set(SPACE)
        assert "imdb" in t.params["tasks"].split(",") and len(t.params["tasks"].split(",")) >= 2
        assert t.user_attrs["mlflow_run_id"]


def test_one_parent_run_with_dashboard(client, experiment_id, study_dir):
    parents = runs_of(client, experiment_id, "study")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    artifacts = [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert "dashboard.html" in artifacts
    html = (study_dir / ".sweeps" / "dashboard.html").read_text()
    assert "<title>mtl-sweeps · e2e</title>" in html and "<script src=" not in html
    for number in range(4):
        assert f"trial {number}" in html


def test_the_run_tree_reads_in_the_mlflow_ui(client, experiment_id, study_dir):
    """Trials under the study run; the baselines under one "baselines" run of it, so the
    trial list is not interleaved with them; the study run carries the verdict as metrics and
    its description, and the figures are the winner's (chosen on validation)."""
    (study,) = runs_of(client, experiment_id, "study")
    (group,) = runs_of(client, experiment_id, "group")
    parent = study.info.run_id
    assert group.info.run_name == "baselines" and group.info.status == "FINISHED"
    assert group.data.tags["mlflow.parentRunId"] == parent
    assert group.data.tags["mtl.group"] == "baselines"
    assert "single-task baselines" in group.data.tags["mlflow.note.content"]
    baselines = runs_of(client, experiment_id, "baseline")
    assert baselines and {r.data.tags["mlflow.parentRunId"] for r in baselines} == {
        group.info.run_id
    }
    trials = runs_of(client, experiment_id, "trial")
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {parent}
    summary = study.data.metrics
    assert summary["summary/trials_complete"] == 4
    best = max(trials, key=lambda r: r.data.metrics["valid/delta_m"])
    number = int(best.data.tags["mtl.trial_number"])
    assert summary["summary/winner_trial"] == number
    assert summary["summary/valid_delta_m"] == best.data.metrics["valid/delta_m"]
    assert summary["summary/test_delta_m"] == best.data.metrics["delta_m"]
    assert summary["summary/seeds"] == 1
    assert 0 <= summary["summary/baseline_share_pct"] <= 100
    note = study.data.tags["mlflow.note.content"]
    assert f"Winner, chosen on validation: trial {number} " in note
    assert "4 trials (4 complete)" in note and "1 seed: no interval" in note


def test_trial_runs_tags_params_metrics(client, experiment_id, study_dir):
    parent = runs_of(client, experiment_id, "study")[0].info.run_id
    study = optuna.load_study(
        study_name="e2e", storage=f"sqlite:///{study_dir / '.sweeps' / 'optuna.db'}"
    )
    trials = {t.number: t for t in study.trials}
    runs = runs_of(client, experiment_id, "trial")
    assert sorted(int(r.data.tags["mtl.trial_number"]) for r in runs) == [0, 1, 2, 3]
    baselines = {
        r.data.tags["mtl.baseline_key"]: r for r in runs_of(client, experiment_id, "baseline")
    }
    for run in runs:
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        trial = trials[int(tags["mtl.trial_number"])]
        tasks = trial.params["tasks"].split(",")
        assert tags["mlflow.parentRunId"] == parent
        assert tags["mtl.tasks"] == ",".join(sorted(tasks))
        assert tags["mtl.state"] == "COMPLETE"
        assert "mtl.error" not in tags
        assert run.info.status == "FINISHED"
        # every effective setting, sampled or fixed, under its dotted name
        assert params["tasks"] == trial.params["tasks"]
        assert params["model.hidden_size"] == str(trial.params["model.hidden_size"])
        assert float(params["training.lr"]) == pytest.approx(trial.params["training.lr"])
        assert params["training.schedule"] == trial.params["training.schedule"]
        assert params["training.weighting"] == trial.params["training.weighting"]
        for fixed in (
            "model.depth",
            "model.activation",
            "training.epochs",
            "training.batch_size",
            "seed",
        ):
            assert fixed in params
        assert params["training.epochs"] == str(EPOCHS)

        deltas = []
        for task in tasks:
            for key in (f"valid/{task}/f1", f"train/{task}/loss", f"weight/{task}"):
                history = client.get_metric_history(run.info.run_id, key)
                assert sorted(m.step for m in history) == list(range(1, EPOCHS + 1)), key
            test = metrics[f"test/{task}/f1"]
            baseline = metrics[f"baseline/{task}/f1"]
            assert 0.0 <= test <= 1.0 and 0.0 <= baseline <= 1.0
            # relative change; a baseline of exactly 0 is compared in absolute terms
            expected = 100.0 * (test - baseline) / (baseline or 1.0)
            assert metrics[f"delta/{task}"] == pytest.approx(expected)
            deltas.append(metrics[f"delta/{task}"])
            # the baseline value is the test metric of a recorded baseline run of this task
            matches = [
                b
                for b in baselines.values()
                if b.data.tags["mtl.task"] == task
                and b.data.metrics[f"test/{task}/f1"] == pytest.approx(baseline)
            ]
            assert matches, f"no baseline run of {task} with test f1 {baseline}"
        assert metrics["delta_m"] == pytest.approx(sum(deltas) / len(deltas))
        assert metrics["valid/delta_m"] == pytest.approx(trial.value)
        assert trial.user_attrs["delta_m"] == pytest.approx(metrics["delta_m"])
        assert {f"delta/{t}" for t in tasks} == {k for k in metrics if k.startswith("delta/")}
        for key in ("time/train_s", "time/baseline_s", "time/trial_s"):
            assert metrics[key] >= 0
        assert metrics["time/trial_s"] >= metrics["time/train_s"] + metrics["time/baseline_s"]
        weights = {t: metrics[f"weight/{t}"] for t in tasks}
        if params["training.weighting"] == "equal":
            assert set(weights.values()) == {1.0}


def test_baselines_trained_once_per_key(client, experiment_id):
    runs = runs_of(client, experiment_id, "baseline")
    keys = Counter(r.data.tags["mtl.baseline_key"] for r in runs)
    assert keys and max(keys.values()) == 1, keys
    for r in runs:
        task = r.data.tags["mtl.task"]
        assert r.info.status == "FINISHED"
        assert r.data.params["tasks"] == task
        assert f"test/{task}/f1" in r.data.metrics


def test_rerun_extends_the_study_and_reuses_baselines(study_dir, client, experiment_id):
    before = {r.data.tags["mtl.baseline_key"] for r in runs_of(client, experiment_id, "baseline")}
    result = cli("run", "study.yaml", "--trials", "6", cwd=study_dir)
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(
        study_name="e2e", storage=f"sqlite:///{study_dir / '.sweeps' / 'optuna.db'}"
    )
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4, 5]
    assert len(runs_of(client, experiment_id, "study")) == 1
    baselines = runs_of(client, experiment_id, "baseline")
    keys = Counter(r.data.tags["mtl.baseline_key"] for r in baselines)
    assert max(keys.values()) == 1, "a baseline key was trained twice"
    assert before <= set(keys)
    new_trials = [
        r
        for r in runs_of(client, experiment_id, "trial")
        if int(r.data.tags["mtl.trial_number"]) >= 4
    ]
    assert len(new_trials) == 2
    # a trial whose baselines all existed before spent no time training them
    for run in new_trials:
        if run.data.metrics["time/baseline_s"] == 0:
            break
    status = cli("status", "study.yaml", cwd=study_dir)
    assert status.returncode == 0
    assert "best by validation: trial" in status.stdout
    for number in range(6):
        assert f"\n│ {number} " in status.stdout or f"│ {number}  " in status.stdout
    assert "not shown" not in status.stdout
    # a long study's table shows its most recent trials; the best line still covers them all
    short = cli("status", "study.yaml", "--rows", "2", cwd=study_dir)
    assert short.returncode == 0, short.stderr
    rows = [n for n in range(6) if f"\n│ {n} " in short.stdout]
    assert rows == [4, 5], short.stdout
    assert "(4 earlier trial(s) not shown: `--rows 0` lists every trial" in short.stdout
    best = [line for line in status.stdout.splitlines() if line.startswith("best by validation")]
    assert best and best[0] in short.stdout
