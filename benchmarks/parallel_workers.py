"""Trials per hour with `sweeps run --workers 1` and `--workers 2` on this machine.

    python benchmarks/parallel_workers.py [--trials 12] [--epochs 30]

The same study (sentiment example, only the schedule searched, so every trial needs the same
three baselines) runs in a fresh workdir for each worker count, through the real command line:
first 3 warm-up trials with one worker (they train the baselines, as the first trials of any
long study do), then ``--trials`` more with ``--workers N``. Two rates are printed:

- whole run: the timed trials over the wall time of the command (process start, data
  loading and the dashboard included);
- steady state: per worker (tag ``mtl.worker``), its trials over the span from its first
  trial's start to its last one's end, read from MLflow, summed over workers: what a long study
  sees per hour once every worker is up (a helper process starts a few seconds after the
  first, importing torch and loading the data).

The target (issue 3): at least 1.7x on 2 cores. With --workers N, sweeps gives each process
cores/N torch threads; one worker alone uses every core through torch's intra-op threads.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


WARM_UP = 3


def sentiment_study(name: str, epochs: int) -> dict:
    """The sentiment example, only the schedule searched, ``WARM_UP`` trials to start with;
    every trial trains (with reuse on, the timed trials would repeat the warm-up's three
    schedules and be answered from them)."""
    study = yaml.safe_load((ROOT / "examples" / "sentiment" / "study.yaml").read_text())
    for task in study["tasks"].values():
        task["path"] = str(ROOT / "examples" / "sentiment" / task["path"])
    study["name"] = name
    study["training"]["epochs"] = epochs
    study["search"] = {
        "n_trials": WARM_UP,
        "sampler": "random",
        "pruner": "none",
        "reuse": False,
        "space": {"training.schedule": {"choices": ["joint", "round_robin", "alternate"]}},
    }
    return study


def steady_rate(runs: list) -> float:
    """Trials per second, summed over the workers (tag ``mtl.worker``), each over its own span
    from its first trial's start to its last one's end."""
    rate = 0.0
    for worker in {r.data.tags["mtl.worker"] for r in runs}:
        mine = [r for r in runs if r.data.tags["mtl.worker"] == worker]
        span = max(r.info.end_time for r in mine) - min(r.info.start_time for r in mine)
        rate += len(mine) / (span / 1000)
    return rate


def run(workers: int, trials: int, epochs: int) -> tuple[float, float]:
    study = sentiment_study(f"parallel{workers}", epochs)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "study.yaml"
        path.write_text(yaml.safe_dump(study))
        sweeps = [sys.executable, "-m", "sweeps", "run", str(path), "--quiet"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(sweeps, check=True, env=env, **quiet)
        started = time.perf_counter()
        more = ["--trials", str(WARM_UP + trials), "--workers", str(workers)]
        subprocess.run(sweeps + more, check=True, env=env, **quiet)
        wall = time.perf_counter() - started
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{Path(folder) / '.sweeps' / 'mlflow.db'}")
        exp = client.get_experiment_by_name(study["name"]).experiment_id
        runs = [
            r
            for r in client.search_runs([exp], "tags.`mtl.kind` = 'trial'", max_results=1000)
            if int(r.data.tags["mtl.trial_number"]) >= WARM_UP
        ]
        return wall, trials / steady_rate(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; {args.trials} trials of 3 tasks x {args.epochs} epochs")
    whole, steady = {}, {}
    for workers in (1, 2):
        wall, span = run(workers, args.trials, args.epochs)
        whole[workers], steady[workers] = args.trials / wall * 3600, args.trials / span * 3600
        print(
            f"--workers {workers}: whole run {wall:6.1f} s = {whole[workers]:5.0f} trials/hour; "
            f"steady state {span:6.1f} s = {steady[workers]:5.0f} trials/hour"
        )
    print(
        f"2 workers over 1: whole run {whole[2] / whole[1]:.2f}x, "
        f"steady state {steady[2] / steady[1]:.2f}x (target >= 1.7x)"
    )


if __name__ == "__main__":
    main()
