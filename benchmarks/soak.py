"""Soak: many short trials with 2 workers on PostgreSQL and the MLflow server (issue 7).

    python benchmarks/soak.py [--trials 200] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Creates two fresh PostgreSQL databases (Optuna's, and the MLflow server's backend), starts
`sweeps server` on one, and two `sweeps worker` processes on a study of ``--trials`` short
trials (two sentiment tasks, 1 epoch, hidden size and learning rate searched). Every second
it samples each worker's resident memory (/proc/PID/status VmRSS). Prints trials per
minute, the trial states (the target is zero errors), runs left RUNNING, and each worker's
memory over its first and last tenth of the run (the target: flat).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def fresh_database(admin_url: str) -> str:
    import psycopg

    name = f"mtl_soak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    import optuna
    from mlflow.tracking import MlflowClient

    from sweeps.server import launch_tracking_server, stop_group
    from tests.helpers import free_port

    folder = Path(tempfile.mkdtemp(prefix="soak-"))
    optuna_url, backend = fresh_database(args.pg), fresh_database(args.pg)
    server, url = launch_tracking_server(backend, folder / "artifacts", free_port())
    data = ROOT / "examples" / "sentiment" / "data"
    task = {"header": False, "columns": ["text", "label"], "inputs": "text", "target": "label",
            "type": "binary", "metric": "f1"}  # fmt: skip
    study = {
        "name": "soak",
        "tracking_uri": url,
        "storage": optuna_url,
        "tasks": {
            "imdb": {"path": str(data / "imdb_labelled.txt"), **task},
            "yelp": {"path": str(data / "yelp_labelled.txt"), **task},
        },
        "features": {"text": {"max_features": 2000}},
        "model": {"hidden_size": 16},
        "training": {"epochs": 1, "lr": 0.005},
        "search": {
            "n_trials": args.trials,
            "sampler": "random",
            "pruner": "none",
            "space": {
                "model.hidden_size": {"choices": [8, 16]},
                "training.lr": {"low": 0.001, "high": 0.01, "log": True},
            },
        },
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    logs = [open(folder / f"worker{i}.log", "w") for i in range(2)]  # noqa: SIM115
    started = time.monotonic()
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "sweeps", "worker", str(path), "--quiet"],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        for log in logs
    ]
    samples: list[list[tuple[float, float]]] = [[] for _ in workers]
    try:
        while any(w.poll() is None for w in workers):
            for i, w in enumerate(workers):
                value = rss_mb(w.pid) if w.poll() is None else None
                if value is not None:
                    samples[i].append((time.monotonic() - started, value))
            time.sleep(1.0)
        wall = time.monotonic() - started
        codes = [w.returncode for w in workers]
        trials = optuna.load_study(study_name="soak", storage=optuna_url).trials
        states = Counter(t.state.name for t in trials)
        client = MlflowClient(url)
        exp = client.get_experiment_by_name("soak").experiment_id
        runs = client.search_runs([exp], "", max_results=5000)
        running = sum(r.info.status == "RUNNING" for r in runs)
    finally:
        stop_group(server)
        for log in logs:
            log.close()
    print(f"{args.trials} trials, 2 workers, PostgreSQL + MLflow server: {wall:.0f} s wall")
    print(f"worker exit codes {codes}; trial states {dict(states)}; runs left RUNNING {running}")
    print(f"throughput: {states['COMPLETE'] / wall * 60:.1f} complete trials per minute")
    for i, series in enumerate(samples):
        if len(series) < 20:
            print(f"worker {i}: too few memory samples ({len(series)})")
            continue
        tenth = max(1, len(series) // 10)
        first = statistics.median(v for _, v in series[tenth : 2 * tenth])  # after start-up
        last = statistics.median(v for _, v in series[-tenth:])
        peak = max(v for _, v in series)
        print(
            f"worker {i}: RSS {first:.0f} MB early (2nd tenth) -> {last:.0f} MB late (last "
            f"tenth), {last - first:+.0f} MB ({(last / first - 1) * 100:+.1f}%), peak {peak:.0f} MB"
        )
    print(f"logs and study in {folder}")


if __name__ == "__main__":
    main()
