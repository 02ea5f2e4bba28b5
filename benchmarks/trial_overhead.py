"""What the platform adds to each trial: `time/trial_s - time/train_s - time/baseline_s`
(sampling, data from the per-process cache, MLflow and Optuna writes on SQLite), read back
from MLflow after a real `sweeps run` of the sentiment example with a fixed configuration.

    python benchmarks/trial_overhead.py [--trials 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient

from sweeps.runner import run_study
from sweeps.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    study = yaml.safe_load((ROOT / "examples" / "sentiment" / "study.yaml").read_text())
    for task in study["tasks"].values():
        task["path"] = str(ROOT / "examples" / "sentiment" / task["path"])
    study["name"] = "overhead"
    study["search"] = {
        "n_trials": args.trials,
        "sampler": "random",
        "pruner": "none",
        "space": {"training.schedule": {"choices": ["joint", "round_robin", "alternate"]}},
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "study.yaml"
        path.write_text(yaml.safe_dump(study))
        spec = load_spec(path)
        started = time.perf_counter()
        run_study(spec)
        wall = time.perf_counter() - started
        client = MlflowClient(spec.tracking)
        exp = client.get_experiment_by_name("overhead").experiment_id
        runs = client.search_runs([exp], "tags.`mtl.kind` = 'trial'")
        baselines = client.search_runs([exp], "tags.`mtl.kind` = 'baseline'")
    m = [r.data.metrics for r in runs]
    train = [x["time/train_s"] for x in m]
    base = [x["time/baseline_s"] for x in m]
    over = [x["time/trial_s"] - x["time/train_s"] - x["time/baseline_s"] for x in m]
    print(
        f"{len(runs)} trials, 3 tasks, 8 epochs; wall {wall:.1f} s for the whole run (dashboard included)"
    )
    print(
        f"baseline runs trained: {len(baselines)} (3 keys expected: the schedule is not in the key)"
    )
    print(f"train_s per trial      median {statistics.median(train):6.3f} s")
    print(f"baseline_s per trial   median {statistics.median(base):6.3f} s  (max {max(base):.3f})")
    print(f"platform overhead      median {statistics.median(over):6.3f} s  (max {max(over):.3f})")
    print(
        f"overhead / train_s     median {statistics.median(o / t for o, t in zip(over, train, strict=True)):6.3f}"
    )


if __name__ == "__main__":
    main()
