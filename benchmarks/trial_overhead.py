"""What the platform adds to each trial: `time/trial_s - time/train_s - time/baseline_s`
(sampling, data from the per-process cache, MLflow and Optuna writes), read back from MLflow
after a real `sweeps run` of the sentiment example with a fixed configuration.

    python benchmarks/trial_overhead.py [--trials 8] [--epochs 50] [--server]

``--server`` sends the tracking through a real MLflow server process (`sweeps server`, on a
SQLite backend in a temporary folder, or on ``--backend URI``) instead of the embedded file.
The target (issue 3): under 10% of `time/trial_s` for trials that train at least 5 s.
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
    parser.add_argument(
        "--epochs", type=int, default=50, help="50 epochs: a little over 5 s a trial here"
    )
    parser.add_argument("--server", action="store_true", help="track through an MLflow server")
    parser.add_argument("--backend", help="the server's backend store (default: SQLite file)")
    args = parser.parse_args()
    study = yaml.safe_load((ROOT / "examples" / "sentiment" / "study.yaml").read_text())
    for task in study["tasks"].values():
        task["path"] = str(ROOT / "examples" / "sentiment" / task["path"])
    study["name"] = "overhead"
    study["training"]["epochs"] = args.epochs
    study["search"] = {
        "n_trials": args.trials,
        "sampler": "random",
        "pruner": "none",
        "space": {"training.schedule": {"choices": ["joint", "round_robin", "alternate"]}},
    }
    with tempfile.TemporaryDirectory() as folder:
        server = None
        if args.server:
            server, study["tracking_uri"] = _start_server(Path(folder), args.backend)
        try:
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
        finally:
            if server is not None:
                from sweeps.server import stop_group

                stop_group(server)
    m = [r.data.metrics for r in runs]
    train = [x["time/train_s"] for x in m]
    base = [x["time/baseline_s"] for x in m]
    over = [x["time/trial_s"] - x["time/train_s"] - x["time/baseline_s"] for x in m]
    where = "MLflow server" if args.server else "embedded SQLite"
    print(
        f"{len(runs)} trials, 3 tasks, {args.epochs} epochs, tracking on {where}; "
        f"wall {wall:.1f} s for the whole run (dashboard included)"
    )
    print(
        f"baseline runs trained: {len(baselines)} (3 keys expected: the schedule is not in the key)"
    )
    print(f"train_s per trial      median {statistics.median(train):6.3f} s")
    print(f"baseline_s per trial   median {statistics.median(base):6.3f} s  (max {max(base):.3f})")
    print(f"platform overhead      median {statistics.median(over):6.3f} s  (max {max(over):.3f})")
    trial = [x["time/trial_s"] for x in m]
    share = [o / t for o, t in zip(over, trial, strict=True)]
    print(f"trial_s per trial      median {statistics.median(trial):6.3f} s")
    print(
        f"overhead / trial_s     median {statistics.median(share):6.3f}  (max {max(share):.3f}; target < 0.10)"
    )


def _start_server(folder: Path, backend: str | None):
    import socket

    from sweeps.server import launch_tracking_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return launch_tracking_server(
        backend or f"sqlite:///{folder / 'server.db'}", folder / "artifacts", port
    )


if __name__ == "__main__":
    main()
