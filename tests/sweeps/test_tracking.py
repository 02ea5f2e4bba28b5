"""sweeps.tracking, the one writer of MLflow: only connection failures are retried as
transient, and an artifact store that cannot be written costs the files, not the record."""

from __future__ import annotations

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
