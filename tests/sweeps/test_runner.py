"""sweeps.runner: the pieces the end-to-end tests do not pin down (worker seeds)."""

from __future__ import annotations

import os
import subprocess
import sys

from sweeps import runner
from sweeps.spec import load_spec
from tests.helpers import ROOT, small_study, write_study


def test_worker_seeds_differ_per_host_and_stay_in_range(monkeypatch, tmp_path):
    spec = load_spec(write_study(tmp_path, small_study(seed=2**32 - 1)))
    monkeypatch.delenv("MTL_WORKER_INDEX", raising=False)
    assert runner.worker_index(worker=False) == 0
    seen = set()
    for host in ("3f9a1c2b4d5e", "a81c77e0f012"):
        monkeypatch.setattr(runner.socket, "gethostname", lambda host=host: host)
        seen.add(runner.worker_index(worker=True))
        sampler = runner.make_sampler(
            spec, offset=10**6, worker=True
        )  # would overflow without the modulo
        assert sampler is not None
    assert len(seen) == 2 and 0 not in seen
    monkeypatch.setenv("MTL_WORKER_INDEX", "3")
    assert runner.worker_index(worker=True) == 3


# each process opens the study, then waits until the other has opened it too (both find the
# same trials there, as two runs started together do) before it draws
DRAW = """
import os, sys, time
from pathlib import Path
from sweeps.runner import open_study
from sweeps.spec import load_spec
study = open_study(load_spec(sys.argv[1]))
ready = Path(sys.argv[2])
(ready / str(os.getpid())).touch()
while len(list(ready.iterdir())) < 2:
    time.sleep(0.01)
print(study.ask().suggest_float("x", 0.0, 1.0))
"""


def test_two_runs_joining_one_study_draw_differently(tmp_path):
    # both found the same trials there and took the same seed: their first trials were one
    path = write_study(tmp_path, small_study("join"))
    spec = load_spec(path)
    first = runner.open_study(spec)  # the run that creates it: the study's own seed
    assert first.sampler is not None
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MTL_WORKER_INDEX", None)
    ready = tmp_path / "ready"
    ready.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DRAW, str(path), str(ready)],
            stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        )
        for _ in range(2)
    ]  # fmt: skip
    draws = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs) and all(draws), draws
    assert draws[0] != draws[1], draws  # (a fresh study's draws stay seeded: test_search_registry)
