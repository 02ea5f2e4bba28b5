"""deploy/slurm/sweep.sbatch: a job array of `sweeps worker`s. Slurm itself is not here, so the
script is read for what Slurm reads (its #SBATCH directives) and run as Slurm runs a batch
step (bash, with SLURM_* set) against real stores: the password comes from its file, the
threads from the CPUs granted, and the worker trains the study to its end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import yaml

from tests.helpers import small_study, two_tasks

SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "slurm" / "sweep.sbatch"


def _directives() -> dict[str, str]:
    found = {}
    for line in SCRIPT.read_text().splitlines():
        if line.startswith("#SBATCH --"):
            key, _, value = line.removeprefix("#SBATCH --").partition("=")
            found[key] = value.split()[0] if value else ""
    return found


def test_the_directives_ask_for_an_array_of_workers_that_stop_on_sigterm():
    directives = _directives()
    assert directives["array"] == "0-3" and directives["cpus-per-task"] == "2"
    where, _, seconds = directives["signal"].partition("@")
    assert where == "B:TERM" and int(seconds) >= 60  # time to record the trial in flight
    assert "%a" in directives["output"]  # one log per array task
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    text = SCRIPT.read_text()
    assert 'exec sweeps worker "$MTL_STUDY"' in text  # the signal reaches the worker itself
    # the password is read from its file, never written into the script
    assigned = re.findall(r"MTL_DB_PASSWORD=(\S+)", text)
    assert assigned and all(value.startswith('"$(<') for value in assigned), assigned


def _run(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_a_batch_step_trains_the_study_with_the_password_from_its_file(tmp_path, postgres_db):
    url = postgres_db()
    study = two_tasks(small_study("slurm"))
    study["training"]["epochs"] = 1
    study["search"]["n_trials"] = 2
    # the password only through the environment, as the study's storage reads it; it holds
    # characters a URL must escape (trust authentication here accepts any)
    study["storage"] = url.replace("postgres@", "postgres:${MTL_DB_PASSWORD}@")
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    secret = tmp_path / "home" / ".mtl" / "db_password"
    secret.parent.mkdir(parents=True)
    secret.write_text("s3cr/t@pw:x")
    secret.chmod(0o600)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MTL_DB", "OMP", "MKL"))}
    env = {
        **base,
        "HOME": str(tmp_path / "home"),
        "MTL_STUDY": str(tmp_path / "study.yaml"),
        "MTL_VENV": sys.prefix,
        "SLURM_CPUS_PER_TASK": "1",
        "SLURM_ARRAY_TASK_ID": "3",
        "SLURM_ARRAY_JOB_ID": "4242",
    }
    done = _run(env, tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "mtl-sweeps worker 3 of job 4242" in done.stdout and ", 1 threads" in done.stdout
    assert "s3cr/t@pw:x" not in done.stdout + done.stderr
    trials = optuna.load_study(study_name="slurm", storage=url).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    # without the study file named, it says what to set and starts nothing
    missing = _run({k: v for k, v in env.items() if k != "MTL_STUDY"}, tmp_path)
    assert missing.returncode != 0 and "set MTL_STUDY to the study file" in missing.stderr
