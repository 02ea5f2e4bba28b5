"""Trials per hour with `sweeps run --ray` and 1 or 2 workers on a local Ray cluster, with the
study on the team stores (Optuna on PostgreSQL, MLflow through its server), and what those
shared stores cost per trial over loopback.

    python benchmarks/ray_workers.py [--trials 12] [--epochs 30]

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, no password; MTL_POSTGRES_URL for another)
and Ray (`pip install 'mtl-sweeps[ray]'`). A Ray head with two CPUs is started on 127.0.0.1
and stopped at the end; each worker count gets a fresh database and study. As in
``parallel_workers.py``: 3 warm-up trials with plain ``sweeps run`` (they train the
baselines), then ``--trials`` more through Ray, each worker taking 2/N CPUs; whole-run and
steady-state rates are printed, and the platform's cost per trial (``trial_s - train_s -
baseline_s``, the part the stores and the bookkeeping take), median over the timed trials.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sweeps.server import launch_tracking_server, stop_group  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "parallel_workers", ROOT / "benchmarks" / "parallel_workers.py"
)
parallel_workers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(parallel_workers)  # type: ignore[union-attr]

PG = os.environ.get("MTL_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
WARM_UP = parallel_workers.WARM_UP


def _database() -> str:
    name = f"mtl_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG.rsplit("/", 1)[0] + f"/{name}"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_head(folder: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = folder / "ray.log"
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
         "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={folder / 'ray'}"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    while "Ray runtime started" not in log.read_text():
        if head.poll() is not None:
            raise SystemExit(f"the Ray head did not start: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    return head, f"127.0.0.1:{port}"


def run(workers: int, trials: int, epochs: int, address: str, tracking: str) -> dict:
    study = parallel_workers.sentiment_study(f"ray{workers}_{uuid.uuid4().hex[:6]}", epochs)
    study.update(storage=_database(), tracking_uri=tracking)
    study["search"]["confirm"] = None
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        path = Path(folder) / "study.yaml"
        path.write_text(yaml.safe_dump(study))
        sweeps = [sys.executable, "-m", "sweeps", "run", str(path), "--quiet"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(sweeps, check=True, env=env, **quiet)
        started = time.perf_counter()
        more = ["--trials", str(WARM_UP + trials), "--ray", address, "--workers", str(workers),
                "--ray-cpus", str(2 / workers)]  # fmt: skip
        subprocess.run(sweeps + more, check=True, env=env, **quiet)
        wall = time.perf_counter() - started
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(study["name"]).experiment_id
    runs = [
        r
        for r in client.search_runs([experiment], "tags.`mtl.kind` = 'trial'", max_results=1000)
        if int(r.data.tags["mtl.trial_number"]) >= WARM_UP
    ]
    rate = parallel_workers.steady_rate(runs)
    m = [r.data.metrics for r in runs]
    overhead = [x["time/trial_s"] - x["time/train_s"] - x["time/baseline_s"] for x in m]
    share = [o / x["time/trial_s"] for o, x in zip(overhead, m, strict=True)]
    return {
        "whole": trials / wall * 3600,
        "steady": rate * 3600,
        "overhead_s": statistics.median(overhead),
        "overhead_share": statistics.median(share),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; {args.trials} trials of 3 tasks x {args.epochs} epochs")
    with tempfile.TemporaryDirectory(prefix="rb", dir="/tmp") as folder:
        head, address = _ray_head(Path(folder))
        server, tracking = launch_tracking_server(_database(), Path(folder) / "art", _free_port())
        try:
            result = {w: run(w, args.trials, args.epochs, address, tracking) for w in (1, 2)}
        finally:
            stop_group(server)
            os.killpg(head.pid, signal.SIGTERM)
            head.wait(timeout=120)
    for w, r in result.items():
        print(
            f"Ray, {w} worker(s): whole run {r['whole']:5.0f} trials/hour; steady state "
            f"{r['steady']:5.0f} trials/hour; stores and bookkeeping {r['overhead_s']:.3f} s "
            f"per trial ({r['overhead_share']:.1%} of it)"
        )
    print(
        f"2 workers over 1: whole run {result[2]['whole'] / result[1]['whole']:.2f}x, "
        f"steady state {result[2]['steady'] / result[1]['steady']:.2f}x"
    )


if __name__ == "__main__":
    main()
