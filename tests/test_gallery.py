"""Every example of the gallery (`examples/*/study.yaml`) runs, shortened: one epoch, one
seed, two trials, stores in a temporary folder. Each must end with its trials COMPLETE (or
PRUNED with the reason, where the study draws a combination that cannot train) and with Δ
against its single-task baselines recorded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweeps.runner import run_study
from sweeps.spec import load_spec
from tests.helpers import ROOT

EXAMPLES = ROOT / "examples"


def _shared_data() -> Path | None:
    """The team's shared data folder: $MTL_SHARED_DATA, next to the repository, or /work's."""
    places = [os.environ.get("MTL_SHARED_DATA"), ROOT.parent / "shared" / "data"]
    places.append("/work/shared/data")
    return next((Path(p) for p in places if p and (Path(p) / "imdb_10k").is_dir()), None)


GALLERY = {  # name -> (folder, study file)
    "sentiment": ("sentiment", "study.yaml"),
    "imdb_yelp": ("imdb_yelp", "study.yaml"),
    "imdb_yelp_classic": ("imdb_yelp", "classic.yaml"),
    "sincos": ("sincos", "study.yaml"),
    "digits": ("digits", "study.yaml"),
    "alternate_vs_joint": ("alternate_vs_joint", "study.yaml"),
    "census": ("census", "study.yaml"),
    "census_partial": ("census", "partial.yaml"),
    "synthetic_correlation": ("synthetic_correlation", "study.yaml"),
}


def _shortened(path: Path, workdir: Path, trials: int):
    """One epoch, one seed, a few trials; an example that confirms its winner confirms one
    configuration with two seeds."""
    spec = load_spec(path)
    training = spec.training.model_copy(update={"epochs": 1, "seeds": 1})
    update: dict = {"n_trials": trials}
    if spec.search.confirms:
        update["confirm"] = spec.search.confirm.model_copy(update={"top": 1, "seeds": 2})
    search = spec.search.model_copy(update=update)
    return spec.model_copy(update={"workdir": str(workdir), "training": training, "search": search})


@pytest.mark.parametrize("example", sorted(GALLERY))
def test_example_runs_shortened(tmp_path, example):
    folder, file = GALLERY[example]
    trials = 4 if example == "alternate_vs_joint" else 2
    spec = _shortened(EXAMPLES / folder / file, tmp_path, trials)
    if folder == "imdb_yelp":  # the data stay in the shared folder, wherever it is here
        shared = _shared_data()
        if shared is None:
            pytest.skip("no shared data folder with imdb_10k and yelp_10k (set MTL_SHARED_DATA)")
        tasks = {
            name: task.model_copy(
                update={"path": str(shared / Path(task.path).parent.name / Path(task.path).name)}
            )
            for name, task in spec.tasks.items()
        }
        spec = spec.model_copy(update={"tasks": tasks})
    summary = run_study(spec)
    assert summary.finished >= trials
    client = MlflowClient(spec.tracking)
    experiment = client.get_experiment_by_name(spec.name).experiment_id
    runs = client.search_runs([experiment], "tags.`mtl.kind` = 'trial'")
    assert len(runs) >= trials
    states = {r.data.tags["mtl.state"] for r in runs}
    assert states <= {"COMPLETE", "PRUNED", "REUSED"}, [r.data.tags.get("mtl.error") for r in runs]
    complete = [r for r in runs if r.data.tags["mtl.state"] == "COMPLETE"]
    assert complete
    numbers = {r.data.tags["mtl.trial_number"] for r in complete}
    for run in runs:  # a repeated configuration points to the complete trial that trained it
        if run.data.tags["mtl.state"] == "REUSED":
            assert run.data.tags["mtl.reuses"] in numbers
    for run in complete:
        tasks = run.data.tags["mtl.tasks"].split(",")
        assert "delta_m" in run.data.metrics
        assert all(f"delta/{t}" in run.data.metrics for t in tasks)
    for run in runs:
        if run.data.tags["mtl.state"] == "PRUNED":
            assert "cannot train" in run.data.tags["mtl.error"]
    confirms = client.search_runs([experiment], "tags.`mtl.kind` = 'confirm'")
    if spec.search.confirms:  # the winner is confirmed, and the verdict written
        assert [r.info.status for r in confirms] == ["FINISHED"]
        assert (tmp_path / "report.md").is_file()
    else:
        assert not confirms


def test_every_example_folder_is_in_the_gallery_and_documented():
    folders = {p.parent.name for p in EXAMPLES.glob("*/study.yaml")}
    assert folders == {folder for folder, _ in GALLERY.values()}
    readme = (ROOT / "README.md").read_text()
    for name in folders:
        assert (EXAMPLES / name / "README.md").is_file(), name
        assert f"examples/{name}/" in readme, f"the README's gallery lacks {name}"
