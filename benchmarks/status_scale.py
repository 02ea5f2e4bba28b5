"""How `sweeps status` scales: a study of ``--trials`` (default 1,000) complete trials, written
into a fresh workdir's two stores the way sweeps writes them (the MLflow record of
``dashboard_scale.fill`` and ``--baselines`` baseline runs, default 1,000: a searched width
leaves about one per trial; the Optuna trials with their params and attributes), then the real
command timed as a process.

    python benchmarks/status_scale.py [--trials 1000] [--baselines 1000] [--repeat 3]

Issue 18's target: under 2 s for 1,000 trials on an idle 2-core machine (status reads MLflow in
one paginated search).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import yaml
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from sweeps import record

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "dashboard_scale", ROOT / "benchmarks" / "dashboard_scale.py"
)
dashboard_scale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dashboard_scale)  # type: ignore[union-attr]


def fill_optuna(url: str, trials: int) -> None:
    rng = np.random.default_rng(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="scale", storage=url, direction="maximize")
    hidden = optuna.distributions.IntDistribution(32, 256)
    for n in range(trials):
        deltas = {t: float(rng.normal(1, 5)) for t in dashboard_scale.TASKS}
        study.add_trial(
            optuna.trial.create_trial(
                params={"model.hidden_size": int(rng.integers(32, 257))},
                distributions={"model.hidden_size": hidden},
                value=float(rng.normal(1, 3)),
                user_attrs={"deltas": deltas, "delta_m": float(np.mean(list(deltas.values()))),
                            "valid_delta_m": float(rng.normal(1, 3)), "mlflow_run_id": f"r{n}"},
            )
        )  # fmt: skip


def add_baselines(url: str, count: int) -> None:
    """``count`` baseline runs beside the trials, as a searched width leaves them (one per
    width, task and seed), with a baseline's metrics and params."""
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("scale").experiment_id
    now = int(time.time() * 1000)
    names = ("test/f1", "valid/f1", "best_epoch", "time/train_s", "test/accuracy", "valid/accuracy")
    for n in range(count):
        tags = {"mtl.kind": "baseline", "mtl.task": dashboard_scale.TASKS[n % 3],
                "mtl.baseline_key": f"key{n}", "mtl.seed": "0"}  # fmt: skip
        run = client.create_run(experiment, tags=tags).info.run_id
        client.log_batch(
            run,
            metrics=[Metric(name, 0.7, now, 0) for name in names],
            params=[Param(f"model.setting{i}", str(i)) for i in range(20)],
            tags=[RunTag("mtl.state", "COMPLETE")],
        )
        client.set_terminated(run)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baselines", type=int, default=1000, help="baseline runs beside them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder) / ".sweeps"
        work.mkdir()
        started = time.perf_counter()
        dashboard_scale.fill(f"sqlite:///{work / 'mlflow.db'}", args.trials)
        add_baselines(f"sqlite:///{work / 'mlflow.db'}", args.baselines)
        fill_optuna(f"sqlite:///{work / 'optuna.db'}", args.trials)
        print(
            f"{args.trials} trials and {args.baselines} baseline runs written to the stores in "
            f"{time.perf_counter() - started:.1f} s"
        )
        study = {
            "name": "scale",
            "tasks": {t: {"path": "builtin:related", "inputs": ["x0"], "target": "a", "type": "binary"}
                      for t in dashboard_scale.TASKS},
            "search": {"n_trials": args.trials, "space": {"model.hidden_size": {"low": 32, "high": 256}}},
        }  # fmt: skip
        path = Path(folder) / "study.yaml"
        path.write_text(yaml.safe_dump(study))
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "sweeps", "status", str(path)],
                capture_output=True, text=True, cwd=ROOT,
            )  # fmt: skip
            times.append(time.perf_counter() - started)
            assert done.returncode == 0, done.stderr
        lines = done.stdout.count("\n")
        status_s = statistics.median(times)
        print(f"sweeps status: {status_s:.2f} s (median of {args.repeat}; "
              f"target < 2 s), {lines} lines printed")  # fmt: skip
        floor = subprocess.run(
            [sys.executable, "-c", FLOOR, f"sqlite:///{work / 'mlflow.db'}", STATUS_QUERY],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        load, open_, search = map(float, floor)
        print(
            f"the MLflow client alone, in a fresh process: import {load:.2f} s, open the store "
            f"{open_:.2f} s, one search of the runs status reads {search:.2f} s = {load + open_ + search:.2f} s "
            f"({(load + open_ + search) / status_s:.0%} of status)"
        )


# what reading MLflow once costs whatever status does with it: status's own query (every run
# but the study run, the baselines and their group run)
STATUS_QUERY = record.where(
    not_kind=[k for k in record.KINDS if k not in (record.TRIAL, record.CONFIRM, record.TRANSFER)]
)
FLOOR = """
import sys, time
t0 = time.perf_counter()
from mlflow.tracking import MlflowClient
t1 = time.perf_counter()
client = MlflowClient(sys.argv[1])
experiment = client.get_experiment_by_name("scale").experiment_id
t2 = time.perf_counter()
client.search_runs([experiment], sys.argv[2], max_results=5000)
print(t1 - t0, t2 - t1, time.perf_counter() - t2)
"""


if __name__ == "__main__":
    main()
