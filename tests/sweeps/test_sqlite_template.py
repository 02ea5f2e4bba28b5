"""sweeps.sqlite_template: a new SQLite MLflow store starts as a copy of an empty store that
MLflow's own migrations made once, and MLflow opens it as it would have opened its own."""

from __future__ import annotations

import sqlite3

import pytest
from mlflow.tracking import MlflowClient

from sweeps.sqlite_stores import mlflow_client
from sweeps.sqlite_template import seed, template_path


def _schema(path) -> dict:
    """Every table, index and trigger, each statement's lines sorted (MLflow's own migrations
    write a table's constraints in either order: two stores it made differ there), with the
    rows MLflow writes on creation."""
    with sqlite3.connect(path) as db:
        objects = {
            (kind, name): sorted(line.strip().rstrip(",") for line in (sql or "").splitlines())
            for kind, name, sql in db.execute("SELECT type, name, sql FROM sqlite_master")
        }
        rows = {
            table: db.execute(f"SELECT * FROM {table}").fetchall()
            for table in ("alembic_version", "workspaces")
        }
    return {"objects": objects, "rows": rows}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("MTL_SWEEPS_CACHE", str(folder))
    return folder


def test_a_seeded_store_is_the_store_mlflow_makes_itself(tmp_path, cache, monkeypatch):
    monkeypatch.chdir(tmp_path)
    MlflowClient(f"sqlite:///{tmp_path / 'own.db'}").search_experiments()  # MLflow's migrations
    client = mlflow_client(f"sqlite:///{tmp_path / 'first.db'}")  # makes the template
    assert template_path().parent == cache and template_path().is_file()
    assert seed(tmp_path / "second.db")  # a copy: MLflow finds every table current
    second = mlflow_client(f"sqlite:///{tmp_path / 'second.db'}")

    own = _schema(tmp_path / "own.db")
    assert _schema(tmp_path / "first.db") == own and _schema(tmp_path / "second.db") == own
    # the Default experiment is MLflow's, made where the store was opened, not the template's
    for made in (client, second):
        (default,) = made.search_experiments()
        assert default.experiment_id == "0" and default.name == "Default"
        assert default.artifact_location == str(tmp_path / "mlruns" / "0")
    run = second.create_run(second.create_experiment("study")).info.run_id
    second.log_metric(run, "delta_m", 1.5)
    assert second.get_run(run).data.metrics == {"delta_m": 1.5}


def test_an_existing_store_is_never_replaced(tmp_path, cache):
    store = tmp_path / "mlflow.db"
    client = mlflow_client(f"sqlite:///{store}")
    client.create_experiment("kept")
    before = store.read_bytes()
    assert not seed(store)
    assert store.read_bytes() == before
    assert "kept" in [e.name for e in mlflow_client(f"sqlite:///{store}").search_experiments()]


def test_a_cache_that_cannot_be_written_leaves_the_store_to_mlflow(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("MTL_SWEEPS_CACHE", str(tmp_path / "file" / "cache"))
    store = tmp_path / "mlflow.db"
    assert not seed(store) and not store.exists()
    client = mlflow_client(f"sqlite:///{store}")  # MLflow's own migrations, as before
    assert [e.name for e in client.search_experiments()] == ["Default"]


def test_a_damaged_template_is_made_again(tmp_path, cache):
    template = template_path()
    template.parent.mkdir(parents=True)
    template.write_bytes(b"not a database" * 100)
    assert seed(tmp_path / "mlflow.db")
    with sqlite3.connect(template) as db:
        assert db.execute("SELECT count(*) FROM experiments").fetchone() == (0,)
    client = mlflow_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert [e.name for e in client.search_experiments()] == ["Default"]


def test_a_template_at_another_schema_revision_is_made_again(tmp_path, cache):
    # two builds of one MLflow version (a development install) may end at other revisions
    assert seed(tmp_path / "first.db")
    template = template_path()
    with sqlite3.connect(template) as db:
        (latest,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
        db.execute("UPDATE alembic_version SET version_num = 'older'")
    assert seed(tmp_path / "second.db")
    for made in (template, tmp_path / "second.db"):
        with sqlite3.connect(made) as db:
            assert db.execute("SELECT version_num FROM alembic_version").fetchone() == (latest,)
    assert mlflow_client(f"sqlite:///{tmp_path / 'second.db'}").search_experiments()


def test_a_cache_path_with_uri_characters_is_used(tmp_path, monkeypatch):
    folder = tmp_path / "odd ?name#1%20"  # a file: URI would read these as query and fragment
    monkeypatch.setenv("MTL_SWEEPS_CACHE", str(folder))
    assert seed(tmp_path / "mlflow.db")  # built there, then copied
    assert template_path().parent == folder and template_path().exists()
    assert seed(tmp_path / "again.db")
    client = mlflow_client(f"sqlite:///{tmp_path / 'again.db'}")
    assert [e.name for e in client.search_experiments()] == ["Default"]
