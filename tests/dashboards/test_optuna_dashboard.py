"""optuna-dashboard (a dev extra), opened on a study's own Optuna storage in headless Chromium:
the objective is named (it showed "Objective 0"), and the affinity attribute is one line."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sweeps.server import stop_group
from sweeps.spec import load_spec
from tests.helpers import browse, cli, free_port, small_study, two_tasks, write_study


def _words(dom: str) -> str:
    dom = re.sub(r"<(style|script|svg)[^>]*>.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def test_optuna_dashboard_shows_the_named_objective(tmp_path):
    command = shutil.which("optuna-dashboard") or str(
        Path(sys.executable).with_name("optuna-dashboard")
    )
    if not Path(command).exists():
        pytest.skip("optuna-dashboard is not installed (pip install -e '.[dev]')")
    study = two_tasks(small_study("od", training={"epochs": 1, "affinity_every": 5}))
    study["search"]["n_trials"] = 1
    path = write_study(tmp_path, study)
    assert cli("run", str(path), "--quiet", cwd=tmp_path).returncode == 0
    spec = load_spec(path)
    port = free_port()
    proc = subprocess.Popen(
        [command, spec.optuna_storage, "--host", "127.0.0.1", "--port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        study_page = _words(
            browse(f"http://127.0.0.1:{port}/dashboard/studies/1", "--dump-dom").stdout
        )
        assert "valid Δm (%)" in study_page and "Objective 0" not in study_page, study_page[:2000]
        trials = f"http://127.0.0.1:{port}/dashboard/studies/1/trials?numbers=0"
        trial_page = _words(browse(trials, "--dump-dom").stdout)
        assert "affinity" in trial_page and '{"imdb":{"imdb":' in trial_page, trial_page[:3000]
    finally:
        stop_group(proc)
