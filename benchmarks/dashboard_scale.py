"""How the dashboard scales: a study of ``--trials`` (default 1,000) trial runs written into a
fresh MLflow SQLite store the way sweeps writes them (tags, params, per-epoch and final
metrics, baselines, pair runs), then ``build_dashboard`` timed and the file measured.

    python benchmarks/dashboard_scale.py [--trials 1000]

The target (issue 5): under 10 s and under 10 MB for 1,000 trials.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from dashboards import build_dashboard

TASKS = ["amazon", "imdb", "yelp"]


def fill(uri: str, trials: int, epochs: int = 8) -> None:
    rng = np.random.default_rng(0)
    client = MlflowClient(uri)
    exp = client.create_experiment("scale")
    parent = client.create_run(exp, tags={"mtl.kind": "study", "mtl.study": "scale"}).info.run_id
    now = int(time.time() * 1000)
    baselines = {}
    for task in TASKS:
        run = client.create_run(
            exp, tags={"mtl.kind": "baseline", "mtl.task": task, "mlflow.parentRunId": parent}
        )
        metrics = [Metric(f"valid/{task}/f1", 0.6 + 0.02 * e, now, e) for e in range(1, epochs + 1)]
        client.log_batch(
            run.info.run_id, metrics=metrics + [Metric(f"test/{task}/f1", 0.75, now, 0)]
        )
        client.set_terminated(run.info.run_id)
        baselines[task] = run.info.run_id
    for n in range(trials):
        size = int(rng.integers(2, 4))
        tasks = sorted(rng.choice(TASKS, size=size, replace=False).tolist())
        tags = {"mtl.kind": "trial", "mtl.trial_number": str(n), "mtl.tasks": ",".join(tasks),
                "mtl.state": "COMPLETE", "mtl.study": "scale", "mlflow.parentRunId": parent}  # fmt: skip
        tags.update({f"mtl.baseline_run.{t}": baselines[t] for t in tasks})
        run = client.create_run(exp, tags=tags).info.run_id
        params = {"tasks": ",".join(tasks), "model.hidden_size": str(int(rng.integers(32, 257))),
                  "training.schedule": str(rng.choice(["joint", "round_robin"])),
                  "training.weighting": str(rng.choice(["equal", "inverse_size"])),
                  "training.lr": f"{rng.uniform(1e-4, 1e-2):.5f}"}  # fmt: skip
        deltas = {t: float(rng.normal(1, 5)) for t in tasks}
        metrics = [Metric(f"delta/{t}", d, now, 0) for t, d in deltas.items()]
        metrics += [Metric(f"baseline/{t}/f1", 0.75, now, 0) for t in tasks]
        metrics += [
            Metric(f"valid/{t}/f1", 0.6 + 0.02 * e, now, e)
            for t in tasks
            for e in range(1, epochs + 1)
        ]
        metrics += [Metric("delta_m", float(np.mean(list(deltas.values()))), now, 0),
                    Metric("valid/delta_m", float(rng.normal(1, 3)), now, epochs)]  # fmt: skip
        client.log_batch(run, metrics=metrics, params=[Param(k, v) for k, v in params.items()],
                         tags=[RunTag("mtl.pareto", "false")])  # fmt: skip
        client.set_terminated(run)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        uri = f"sqlite:///{Path(folder) / 'mlflow.db'}"
        started = time.perf_counter()
        fill(uri, args.trials)
        print(f"{args.trials} trial runs written in {time.perf_counter() - started:.1f} s")
        times = []
        for _ in range(2):
            started = time.perf_counter()
            path = build_dashboard(uri, "scale", Path(folder) / "dashboard.html")
            times.append(time.perf_counter() - started)
        size = path.stat().st_size / 1e6
        print(f"build_dashboard: {min(times):.2f} s (best of 2; target < 10 s)")
        print(f"dashboard.html:  {size:.2f} MB (target < 10 MB; plotly.js alone is ~4.7 MB)")


if __name__ == "__main__":
    main()
