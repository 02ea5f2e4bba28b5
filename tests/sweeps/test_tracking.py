"""sweeps.tracking, the one writer of MLflow: only connection failures are retried as
transient, an artifact store that cannot be written costs the files, not the record, and a
database tracking URI keeps its artifacts in the workdir, not in `./mlruns` of any folder."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from sweeps.tracking import _transient
from tests.helpers import cli, small_study, write_study


def _runs(uri: str, name: str, kind: str | None = None):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    query = f"tags.`mtl.kind` = '{kind}'" if kind else ""
    return client.search_runs([exp.experiment_id], query, max_results=1000)


def test_only_connection_failures_are_retried_as_transient():
    run_dir = "/x/artifacts/8f9f1dd4f5e54c02b50288bdc6af63bb"  # "502" among a run id's digits
    assert not _transient(NotADirectoryError(f"[Errno 20] Not a directory: '{run_dir}'"))
    assert not _transient(ValueError("Invalid parameter 'lr'"))
    assert _transient(Exception("failed with error code 503 != 200"))
    assert _transient(Exception("HTTPConnectionPool(...): Max retries exceeded"))
    assert _transient(ConnectionRefusedError("[Errno 111] Connection refused"))
    # a tracking server whose database restarted under the request: Flask's bare 500 page
    # (MLflow's own 500s are JSON with a message, and are not retried unless it says so)
    failed = "API request to endpoint /api/2.0/mlflow/runs/log-batch failed with error code"
    assert _transient(Exception(
        f"{failed} 500 != 200. Response body: '<!doctype html>\n<html lang=en>\n"
        "<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>'"
    ))  # fmt: skip
    bare = "<!doctype html>\n<title>500 Internal Server Error</title>"  # the artifact proxy's
    assert not _transient(Exception(
        f"500 Server Error: INTERNAL SERVER ERROR for url: http://127.0.0.1:5000/api/2.0/"
        f"mlflow-artifacts/artifacts/1/run/artifacts/affinity.csv. Response text: {bare}"
    ))  # fmt: skip
    assert not _transient(Exception(
        f"{failed} 500 != 200. Response body: "
        '\'{"error_code": "INTERNAL_ERROR", "message": "Invalid value for metric"}\''
    ))  # fmt: skip


def test_an_unwritable_artifact_store_costs_the_files_not_the_record(tmp_path):
    study = small_study(
        "no_artifacts",
        training={"epochs": 2, "affinity_every": 5},  # every trial logs affinity.csv
        search={"n_trials": 2, "pruner": "none"},
    )
    study["tasks"] = {k: v for k, v in study["tasks"].items() if k in ("imdb", "yelp")}
    path = write_study(tmp_path, study)
    workdir = tmp_path / ".sweeps"
    workdir.mkdir()
    (workdir / "artifacts").write_text("a file where the artifact folder should be\n")
    result = cli("run", str(path), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("the artifact store cannot be written") == 1
    assert "Traceback" not in result.stderr
    tracking = f"sqlite:///{workdir / 'mlflow.db'}"
    trials = _runs(tracking, "no_artifacts", "trial")
    assert len(trials) == 2
    for run in trials:
        assert run.info.status == "FINISHED" and run.data.tags["mtl.state"] == "COMPLETE"
        assert "delta_m" in run.data.metrics and "valid/imdb/f1" in run.data.metrics
        assert run.data.tags["mtl.artifact_error"].startswith("affinity.csv: ")
    assert not [r for r in _runs(tracking, "no_artifacts") if r.info.status == "RUNNING"]


@pytest.mark.postgres
def test_a_database_tracking_uri_keeps_artifacts_in_the_workdir(tmp_path, postgres_db):
    """MLflow's default artifact root is ``./mlruns`` of whatever folder the command ran in."""
    study = small_study("pg_artifacts", tracking_uri=postgres_db(), training={"epochs": 1})
    study["search"]["n_trials"] = 1
    path = write_study(tmp_path / "study", study)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("run", str(path), "--quiet", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert list(elsewhere.iterdir()) == []  # no ./mlruns where the command ran
    experiment = MlflowClient(study["tracking_uri"]).get_experiment_by_name("pg_artifacts")
    assert experiment.artifact_location == (path.parent / ".sweeps" / "artifacts").as_uri()
    assert (path.parent / ".sweeps" / "artifacts").is_dir()  # the models and reports are there
