"""sweeps.resume_checks: a resumed study on other data, or beside a lost Optuna storage, is
refused (exit 2, the field named) before anything is added to either store."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd

from sweeps.spec import load_spec
from tests.helpers import cli, runs_of, write_study


def _table_study(folder) -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3)).round(3)
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["y"] = (x[:, 0] > 0).astype(int)
    frame["z"] = (x[:, 1] + x[:, 2] > 0).astype(int)
    frame.to_csv(folder / "table.csv", index=False)
    task = {"path": "table.csv", "inputs": ["a", "b", "c"], "type": "binary"}
    return {
        "name": "resume",
        "tasks": {"y": {**task, "target": "y"}, "z": {**task, "target": "z"}},
        "model": {"hidden_size": 8},
        "training": {"epochs": 2},
        "search": {"n_trials": 1, "space": {"training.lr": {"low": 1e-3, "high": 1e-2}}},
    }


def _record(spec) -> tuple[int, int]:
    trials = optuna.load_study(study_name=spec.name, storage=spec.optuna_storage).trials
    return len(trials), len(runs_of(spec, "trial"))


def test_a_data_file_edited_between_runs_is_refused_and_restoring_it_resumes(tmp_path):
    path = write_study(tmp_path, _table_study(tmp_path))
    assert cli("run", str(path), "--quiet", cwd=tmp_path).returncode == 0
    spec = load_spec(path)
    before = _record(spec)
    table = tmp_path / "table.csv"
    original = table.read_text()
    table.write_text(original.replace(",1,", ",0,", 3))  # three labels of `y` changed
    again = cli("run", str(path), "--trials", "2", "--quiet", cwd=tmp_path)
    assert again.returncode == 2, again.stderr
    assert "tasks.y: its data or settings" in again.stderr and "changed since" in again.stderr
    assert "tasks.z: its data" in again.stderr  # z reads the same file: its hash moved too
    assert "Traceback" not in again.stderr
    assert _record(spec) == before  # nothing added to either store
    # a task's settings count too: another split is other rows
    table.write_text(original)
    study = _table_study(tmp_path)
    study["tasks"]["z"]["split"] = {"valid": 0.3, "test": 0.2}
    write_study(tmp_path, study)
    moved = cli("run", str(path), "--trials", "2", "--quiet", cwd=tmp_path)
    assert moved.returncode == 2 and "tasks.z: its data or settings" in moved.stderr
    write_study(tmp_path, _table_study(tmp_path))  # restored: the study resumes
    resumed = cli("run", str(path), "--trials", "2", "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert _record(spec) == (2, 2)


def test_a_deleted_optuna_db_beside_a_kept_mlflow_record_is_refused(tmp_path):
    path = write_study(tmp_path, _table_study(tmp_path))
    assert cli("run", str(path), "--quiet", cwd=tmp_path).returncode == 0
    spec = load_spec(path)
    (tmp_path / ".sweeps" / "optuna.db").unlink()
    again = cli("run", str(path), "--quiet", cwd=tmp_path)
    assert again.returncode == 2, again.stderr
    assert "storage: study 'resume' has no Optuna trials" in again.stderr
    assert "1 trial runs" in again.stderr and "optuna.db was deleted" in again.stderr
    assert len(runs_of(spec, "trial")) == 1  # no second "trial 0"
    status = cli("run", str(path), "--quiet", cwd=tmp_path)  # and it stays refused
    assert status.returncode == 2
    # with helpers too: the process that starts them checks before it names the study run
    # (it named the run unchecked, and every helper then passed the check)
    helped = cli("run", str(path), "--quiet", "--workers", "2", cwd=tmp_path)
    assert helped.returncode == 2 and "optuna.db was deleted" in helped.stderr, helped.stderr
    assert len(runs_of(spec, "trial")) == 1
