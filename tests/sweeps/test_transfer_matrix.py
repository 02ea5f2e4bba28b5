"""The pair transfer matrix (issue 4, first part): from the study's pair trials, and filled on
purpose by `sweeps transfer`."""

from __future__ import annotations

import csv
import io
import statistics

import pytest
from mlflow.tracking import MlflowClient

from sweeps.runner import run_study
from sweeps.spec import load_spec
from sweeps.transfer_matrix import matrix_from_store
from tests.helpers import cli, small_study, write_study

TASKS = ["amazon", "imdb", "yelp"]


def _runs(spec, kind):
    client = MlflowClient(spec.tracking)
    exp = client.get_experiment_by_name(spec.name).experiment_id
    return client.search_runs([exp], f"tags.`mtl.kind` = '{kind}'", max_results=1000)


def test_matrix_from_trials_uses_pair_trials_only(tmp_path):
    pairs = [["imdb", "yelp"], ["amazon", "imdb"], ["amazon", "imdb", "yelp"]]
    study = small_study(
        "pairs",
        training={"epochs": 1},
        search={"n_trials": 6, "sampler": "random", "space": {"tasks": {"choices": pairs}}},
    )
    spec = load_spec(write_study(tmp_path, study))
    run_study(spec)
    matrix = matrix_from_store(spec)
    trials = [r for r in _runs(spec, "trial") if r.info.status == "FINISHED"]
    assert any(len(r.data.tags["mtl.tasks"].split(",")) == 3 for r in trials), "draw a triple"
    for i in TASKS:
        assert matrix.mean(i, i) == 0.0
        for j in TASKS:
            if i == j:
                continue
            mine = [
                r.data.metrics[f"delta/{i}"]
                for r in trials
                if sorted(r.data.tags["mtl.tasks"].split(",")) == sorted([i, j])
            ]
            assert matrix.count(i, j) == len(mine)  # the triples do not count
            if mine:
                assert matrix.mean(i, j) == pytest.approx(statistics.fmean(mine))
            else:
                assert matrix.mean(i, j) is None
    assert matrix.mean("yelp", "amazon") is None  # no trial drew that pair alone


def test_sweeps_transfer_fills_the_matrix_and_reuses_its_runs(tmp_path):
    study = small_study("fill", training={"epochs": 1}, search={"n_trials": 1})
    path = write_study(tmp_path, study)
    spec = load_spec(path)
    first = cli("transfer", str(path), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "the study file's fixed settings" in first.stdout  # no trial has completed yet
    runs = _runs(spec, "transfer")
    assert sorted(r.data.tags["mtl.tasks"] for r in runs) == [
        "amazon,imdb",
        "amazon,yelp",
        "imdb,yelp",
    ]
    rows = list(
        csv.DictReader(io.StringIO((tmp_path / ".sweeps" / "transfer_matrix.csv").read_text()))
    )
    assert [r["task"] for r in rows] == TASKS
    for row in rows:
        i = row["task"]
        assert float(row[f"with_{i}"]) == 0.0
        for j in TASKS:
            if j == i:
                continue
            (run,) = [
                r for r in runs if sorted(r.data.tags["mtl.tasks"].split(",")) == sorted([i, j])
            ]
            assert float(row[f"with_{j}"]) == pytest.approx(
                run.data.metrics[f"delta/{i}"], abs=1e-4
            )
            assert row[f"n_{j}"] == "1"
    client = MlflowClient(spec.tracking)
    (parent,) = _runs(spec, "study")
    assert "transfer_matrix.csv" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    # each pair's baselines are the study's, trained once per task
    assert sorted(r.data.tags["mtl.task"] for r in _runs(spec, "baseline")) == TASKS
    again = cli("transfer", str(path), cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("reused") == 3
    assert len(_runs(spec, "transfer")) == 3
    # after a trial completes, `best` takes its settings; status shows the matrix
    assert cli("run", str(path), cwd=tmp_path).returncode == 0
    best = cli("transfer", str(path), cwd=tmp_path)
    assert "the settings of best trial 0" in best.stdout
    status = cli("status", str(path), cwd=tmp_path)
    assert "pair transfer matrix" in status.stdout


def test_transfer_refuses_bad_requests(tmp_path):
    study = small_study("bad", training={"epochs": 1})
    path = write_study(tmp_path, study)
    result = cli("transfer", str(path), "--settings", "median", cwd=tmp_path)
    assert result.returncode == 2 and "--settings" in result.stderr
    study["tasks"] = {"imdb": study["tasks"]["imdb"]}
    single = write_study(tmp_path, study, "single.yaml")
    result = cli("transfer", str(single), cwd=tmp_path)
    assert result.returncode == 2 and "at least two tasks" in result.stderr
