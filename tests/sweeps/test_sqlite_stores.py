"""sweeps.sqlite_stores: processes opening one fresh SQLite workdir at the same instant (a
`sweeps run` and a `sweeps status` in its first seconds, workers started by one script)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import optuna

from sweeps.spec import load_spec
from sweeps.sqlite_stores import first_open, mlflow_client, sqlite_file
from tests.helpers import ROOT, small_study, write_study

# what a `sweeps run` opens first: its MLflow experiment, then its Optuna storage. Each process
# imports once and then opens one fresh workdir per race (argv: the workers, then a study file
# and a ready folder per race); before each race it says so in that race's ready folder and waits
# for the others', so that all of them create the fresh stores together
OPEN_BOTH = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from sweeps.optuna_storage import make_storage
    from sweeps.spec import load_spec
    from sweeps.tracking import open_tracker
    workers, races = int(sys.argv[1]), sys.argv[2:]
    for path, ready in zip(races[::2], races[1::2]):
        spec = load_spec(path)
        (Path(ready) / str(os.getpid())).touch()
        while len(list(Path(ready).iterdir())) < workers:
            time.sleep(0.001)
        open_tracker(spec)
        make_storage(spec)
        print("opened", path)
    """
)


def test_processes_opening_a_fresh_workdir_at_once_all_find_its_stores_ready(tmp_path):
    # without the lock, 3 MLflow clients on a fresh file failed together 10 times in 15
    # ("table experiments already exists", "Online migration expected to match one row")
    # 3 races of 4 processes; the 4 import once and run the races one after the other
    races = []
    for attempt in range(3):
        folder, ready = tmp_path / f"try{attempt}", tmp_path / f"ready{attempt}"
        ready.mkdir()
        races += [write_study(folder, small_study("race")), ready]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_BOTH, "4", *map(str, races)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0 and out.count("opened") == 3, out[-2000:]
    for path in races[::2]:
        spec = load_spec(path)
        client = mlflow_client(spec.tracking)
        assert [e.name for e in client.search_experiments()].count("race") == 1
        optuna.storages.RDBStorage(spec.optuna_storage)  # complete: its version is current


def test_only_sqlite_files_take_a_lock(tmp_path):
    assert sqlite_file(f"sqlite:///{tmp_path}/a.db") == tmp_path / "a.db"
    assert sqlite_file("sqlite:///relative/a.db").as_posix() == "relative/a.db"
    for other in ("sqlite://", "sqlite:///:memory:", "postgresql://u@h/db", "http://h:5000"):
        assert sqlite_file(other) is None
    # a folder that does not exist yet: no lock, and no folder made (the store's own error
    # names it), unless asked for as MLflow, which makes the folder itself, needs it
    with first_open(f"sqlite:///{tmp_path}/missing/a.db"):
        pass
    assert not (tmp_path / "missing").exists()
    with first_open(f"sqlite:///{tmp_path}/made/a.db", make_folder=True):
        assert (tmp_path / "made" / "a.db.lock").exists()
    with first_open(f"sqlite:///{tmp_path}/a.db"):
        assert (tmp_path / "a.db.lock").exists()
