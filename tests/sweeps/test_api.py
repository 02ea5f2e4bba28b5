"""The Python API (`from sweeps import Study`) on a real two-trial study: from a mapping whose
relative paths are anchored to its folder, validated, run, read back as a table, the winner
chosen on validation, its model; the same refusals as the command line, as StudyError; and
`sweeps export` writing that table whole or not at all."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import sweeps
from sweeps import Study, StudyError
from tests.helpers import SENTIMENT, cli, small_study, two_tasks, write_study


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    (folder / "data").mkdir()
    study = two_tasks(small_study("api", search={"n_trials": 2, "space": {
        "training.weighting": {"choices": ["equal", "inverse_size"]}}}))  # fmt: skip
    for name in ("imdb", "yelp"):  # relative paths, anchored to the folder given
        shutil.copy(SENTIMENT / f"{name}_labelled.txt", folder / "data")
        study["tasks"][name]["path"] = f"data/{name}_labelled.txt"
    api = Study(study, folder=folder)
    summary = api.validate().run()
    return folder, api, summary


def test_a_study_from_a_mapping_runs_where_its_folder_says(ran):
    folder, api, summary = ran
    assert summary.finished == 2 and summary.closed
    assert api.spec.workdir_path == folder / ".sweeps"
    assert (folder / ".sweeps" / "mlflow.db").is_file()
    assert summary.dashboard == folder / ".sweeps" / "dashboard.html"
    assert summary.report == folder / ".sweeps" / "report.md"
    assert "Study('api', tasks=['imdb', 'yelp']" in repr(api)


def test_results_are_one_row_per_run_with_split_explicit_names(ran):
    folder, api, _ = ran
    frame = api.results()
    client = MlflowClient(api.spec.tracking)
    experiment = client.get_experiment_by_name("api").experiment_id
    runs = {r.info.run_id: r for r in client.search_runs([experiment], "", max_results=100)}
    kinds = frame["kind"].value_counts().to_dict()
    assert kinds == {"trial": 2, "baseline": 2}  # no confirmation here; a baseline per task
    assert list(frame["kind"]) == ["trial", "trial", "baseline", "baseline"]
    assert list(frame.columns[:6]) == ["kind", "trial", "state", "tasks", "seed", "run_id"]
    for name in ("delta_m", "delta/imdb", "baseline/imdb/f1", "valid/imdb/f1"):
        assert name not in frame.columns, name  # no split in the name, or a per-epoch series
    for row in frame[frame["kind"] == "trial"].itertuples():
        run = runs[row.run_id]
        assert row.trial == int(run.data.tags["mtl.trial_number"])
        got = frame.loc[frame["run_id"] == row.run_id].iloc[0]
        assert got["test/delta_m"] == run.data.metrics["delta_m"]
        assert got["valid/delta_m"] == run.data.metrics["valid/delta_m"]
        assert got["test/delta/imdb"] == run.data.metrics["delta/imdb"]
        assert got["baseline/test/imdb/f1"] == run.data.metrics["baseline/imdb/f1"]
        assert got["model.hidden_size"] == 16  # params as numbers
        assert got["training.weighting"] == run.data.params["training.weighting"]
    baseline = frame[frame["kind"] == "baseline"].iloc[0]
    assert baseline["tasks"] in ("imdb", "yelp") and baseline["state"] == "COMPLETE"
    assert baseline["seed"] == 0 and pd.isna(baseline["test/delta_m"])


def test_best_is_chosen_on_validation_and_never_on_test(ran):
    _, api, summary = ran
    frame = api.results()
    trials = frame[frame["kind"] == "trial"]
    by_valid = trials.sort_values(["valid/delta_m", "trial"], ascending=[False, True]).iloc[0]
    winner = api.best()
    assert winner.number == by_valid["trial"] == summary.best_number
    assert winner.valid_delta_m.value == by_valid["valid/delta_m"]
    assert winner.test_delta_m.value == by_valid["test/delta_m"]  # reported, not chosen on
    with pytest.raises(StudyError, match="chosen on validation only"):
        api.best(split="test")


def test_status_report_dashboard_and_model(ran, tmp_path):
    folder, api, summary = ran
    text = api.status()
    assert f"best by validation: trial {summary.best_number}" in text
    assert api.report() == folder / ".sweeps" / "report.md"
    page = api.dashboard(tmp_path / "page.html")
    assert page == tmp_path / "page.html" and "<title>mtl-sweeps · api</title>" in page.read_text()
    model = api.model(trial=summary.best_number)
    out = model.predict(pd.DataFrame({"text": ["great phone, works well", "awful, broke"]}))
    assert len(out) == 2 and {"imdb", "yelp"} <= set(out.columns)


def test_the_cli_refusals_come_as_study_errors(tmp_path):
    with pytest.raises(StudyError) as caught:
        Study({"name": "x"}, folder=tmp_path)
    assert any("tasks: required but missing" in p for p in caught.value.problems)
    with pytest.raises(StudyError, match="a study is a mapping"):
        Study(["name", "x"])  # type: ignore[arg-type]
    with pytest.raises(StudyError, match="folder: no such folder"):
        Study(small_study("x"), folder=tmp_path / "missing")
    study = small_study("x")
    study["tasks"]["imdb"]["path"] = "nowhere.txt"  # relative: looked for in tmp_path
    api = Study(study, folder=tmp_path)
    with pytest.raises(StudyError, match="nowhere.txt"):
        api.validate()
    with pytest.raises(StudyError, match="workers: helper processes read the study"):
        Study(small_study("x"), folder=tmp_path).run(workers=2)
    assert not (tmp_path / ".sweeps").exists(), "a refused study wrote a store"
    assert sweeps.Study is Study and "Study" in sweeps.__all__


def test_export_writes_the_table_whole(ran, tmp_path):
    folder, api, _ = ran
    study = two_tasks(small_study("api"))
    for name in ("imdb", "yelp"):
        study["tasks"][name]["path"] = f"data/{name}_labelled.txt"
    write_study(folder, study, "api.yaml")  # the command reads the same study from a file
    done = cli("export", "api.yaml", "--out", str(tmp_path / "r.csv"), cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "4 rows (2 trial, 2 baseline)" in done.stdout
    back = pd.read_csv(tmp_path / "r.csv")
    assert list(back.columns) == list(api.results().columns)
    assert sorted(back["run_id"]) == sorted(api.results()["run_id"])
    done = cli("export", "api.yaml", "--out", str(tmp_path / "r.parquet"), cwd=folder)
    assert done.returncode == 0 and len(pd.read_parquet(tmp_path / "r.parquet")) == 4
    for out, needle in (
        ("r.txt", "--out: 'r.txt'; results are written as .csv or .parquet"),
        ("no/such/r.csv", "--out: no such folder"),
    ):
        done = cli("export", "api.yaml", "--out", str(tmp_path / out), cwd=folder)
        assert done.returncode == 2 and needle in done.stderr, done.stderr
    assert not (tmp_path / "r.txt").exists()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    write_study(fresh, small_study("never_run"))
    done = cli("export", "study.yaml", "--out", str(tmp_path / "n.csv"), cwd=fresh)
    assert done.returncode == 2 and "has no runs yet" in done.stderr
    assert not (tmp_path / "n.csv").exists()


def test_a_column_of_numbers_and_words_is_written_to_parquet_as_text(tmp_path):
    """A searched `max_features: [1000, null]` or `[1000, auto]` mixes types in one column;
    parquet holds one type per column, so it is written as text, blanks kept."""
    from sweeps.results import _number
    from sweeps.table_files import write_whole

    assert _number("None") is None and _number("1000") == 1000 and _number("0.5") == 0.5
    frame = pd.DataFrame({"mixed": [1000, "auto", None], "n": [1, 2, 3]})
    write_whole(frame, tmp_path / "m.parquet")
    back = pd.read_parquet(tmp_path / "m.parquet")
    assert list(back["mixed"].iloc[:2]) == ["1000", "auto"] and pd.isna(back["mixed"].iloc[2])
    assert list(back["n"]) == [1, 2, 3]
