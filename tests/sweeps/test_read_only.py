"""A workdir that cannot be written: refused before anything is written, exit 2 with the field.

A read-only folder is made as a read-only bind mount in a mount namespace of the command's
own (``unshare -m``): root, which these tests run as, writes through any file mode, so only
a read-only file system shows what a user meets on a read-only share or a mounted archive."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import ROOT, cli, small_study, write_study


def _can_unshare() -> str | None:
    try:
        probe = subprocess.run(
            ["unshare", "-m", "sh", "-c", "mount --bind / / 2>&1 || exit 3"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare cannot run here: {exc}"
    return None if probe.returncode == 0 else f"no mount namespace here: {probe.stdout[-200:]}"


REASON = _can_unshare()
needs_mounts = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def _in_read_only(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`sweeps ARGS` in ``folder``, which the command sees read-only."""
    script = (
        f'mount --bind "{folder}" "{folder}" && mount -o remount,ro,bind "{folder}" && exec "$@"'
    )
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", sys.executable, "-m", "sweeps", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@needs_mounts
@pytest.mark.parametrize("workdir_exists", [False, True])
def test_a_read_only_workdir_is_refused_before_anything_is_written(tmp_path, workdir_exists):
    path = write_study(tmp_path, small_study("ro"))
    if workdir_exists:
        (tmp_path / ".sweeps").mkdir()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for command in (["validate", str(path)], ["run", str(path), "--quiet"]):
        result = _in_read_only(tmp_path, *command)
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert "workdir:" in result.stderr and "cannot be written" in result.stderr, result.stderr
        assert str(tmp_path) in result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    # the same study where it can be written: validate passes (the check is not a refusal of all)
    ok = cli("validate", str(path), cwd=tmp_path)  # in process: a message and an exit code
    assert ok.returncode == 0, ok.stderr


# the break comes once a trial has completed and another trains: the command's whole run is
# inside one mount namespace, where the workdir is its own file system
MIDWAY = """
import sys, time
from sweeps.sqlite_stores import mlflow_client
uri = f"sqlite:///{sys.argv[1]}/.sweeps/mlflow.db"
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        client = mlflow_client(uri)
        exp = client.get_experiment_by_name("broken")
        states = [r.data.tags.get("mtl.state") for r in client.search_runs(
            [exp.experiment_id], "tags.`mtl.kind` = 'trial'")] if exp else []
        if "COMPLETE" in states and "RUNNING" in states:
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.3)
sys.exit(1)
"""


@needs_mounts
def test_a_full_disk_mid_run_stops_the_sweep_at_once_and_the_study_resumes(tmp_path):
    # it was retried as an outage (store_retry_s on every write, a traceback a trial). The
    # workdir is a 48 MB tmpfs of the command's own, filled once a trial has completed.
    # (A read-only remount mid-run is not tested: SQLite goes on writing through the file it
    # has open; the same markers, "readonly database", are classified with the full disk.)
    work = tmp_path / "w"
    work.mkdir()
    study = small_study("broken", training={"epochs": 60}, search={"n_trials": 2, "pruner": "none"})
    study["tasks"] = {k: v for k, v in study["tasks"].items() if k in ("imdb", "yelp")}
    study["search"]["store_retry_s"] = 120
    # the trial in flight stays RUNNING (its FAIL cannot be written to the full disk either):
    # the resume takes it over once its heartbeat is stale, 2 x heartbeat_s (the default 20 s
    # made the resume wait 40 s)
    study["search"]["heartbeat_s"] = 3
    write_study(work, study)
    (tmp_path / "midway.py").write_text(MIDWAY)
    script = f"""
        set -u
        W="{work}"
        cp "$W/study.yaml" /tmp/study.$$ && mount -t tmpfs -o size=48m tmpfs "$W" && cp /tmp/study.$$ "$W/study.yaml"
        "$PY" -m sweeps run "$W/study.yaml" --quiet > "$W/../run.log" 2>&1 &
        run=$!
        "$PY" "{tmp_path / "midway.py"}" "$W" || {{ echo "never midway"; kill $run; exit 9; }}
        # frozen while the disk fills: on a fast machine the trial seen running ended first
        kill -STOP $run
        start=$(date +%s)
        dd if=/dev/zero of="$W/.sweeps/filler" bs=1M 2>/dev/null; sync
        kill -CONT $run
        wait $run; code=$?
        echo "exit=$code took=$(( $(date +%s) - start ))"
        rm "$W/.sweeps/filler"
        "$PY" -m sweeps run "$W/study.yaml" --quiet > "$W/../resume.log" 2>&1
        echo "resume=$?"
        "$PY" -m sweeps status "$W/study.yaml" > "$W/../status.log" 2>&1
        cp -r "$W/.sweeps" "$W/../kept"
    """
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PY": sys.executable},
    )
    log = (tmp_path / "run.log").read_text() if (tmp_path / "run.log").exists() else ""
    assert "exit=1" in done.stdout, (done.stdout, done.stderr, log)
    took = int(done.stdout.split("took=")[1].split()[0])
    assert took < 60, log  # not store_retry_s (120 s) per write
    assert "cannot be written" in log and "Traceback" not in log, log
    assert log.count("error:") == 1, log
    assert "resume=0" in done.stdout, (done.stdout, (tmp_path / "resume.log").read_text())
    # after the mend, the resumed study finishes with every trial recorded and none RUNNING
    client = MlflowClient(f"sqlite:///{tmp_path / 'kept' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("broken")
    runs = client.search_runs([exp.experiment_id], "", max_results=1000)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    done_trials = [r for r in runs if r.data.tags.get("mtl.kind") == "trial"
                   and r.data.tags.get("mtl.state") == "COMPLETE"]  # fmt: skip
    assert len(done_trials) >= 2
