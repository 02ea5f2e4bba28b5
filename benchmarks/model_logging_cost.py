"""What recording a trained model costs (``sweeps.models.record_model``: save the mtl_core
folder, write the MLflow Model, upload it, tag the run), on the sentiment example's model
(3 tasks, a 5000-word bag of words, hidden 200), on the embedded SQLite store and through a
real MLflow server process; and the model's size on disk.

    python benchmarks/model_logging_cost.py [--repeat 5] [--no-server]

The target (issue 20): under 5% of a trial that trains at least 5 s, i.e. under 0.25 s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from sweeps.models import MODEL_PATH, record_model
from sweeps.spec import load_spec
from sweeps.study_data import load_study_data
from sweeps.tracking import Tracker

ROOT = Path(__file__).resolve().parents[1]
BAR_S = 0.05 * 5.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-server", action="store_true", help="the embedded store only")
    args = parser.parse_args()
    from mtl_core.train import fit  # here, not at the top: torch loads after the arguments

    study = yaml.safe_load((ROOT / "examples" / "sentiment" / "study.yaml").read_text())
    for task in study["tasks"].values():
        task["path"] = str(ROOT / "examples" / "sentiment" / task["path"])
    study["training"]["epochs"] = 1  # the model's size does not depend on how long it trains
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "study.yaml"
        path.write_text(yaml.safe_dump(study))
        spec = load_spec(path)
        data = load_study_data(spec)
        from sweeps.space import config_from_params

        config = config_from_params(spec, spec.task_names, {}).train_config(0)
        result = fit(data.subset(spec.task_names), config)
        stores = [("embedded SQLite", f"sqlite:///{Path(folder) / 'mlflow.db'}", None)]
        if not args.no_server:
            from sweeps.server import launch_tracking_server  # only with a server

            port = _free_port()
            backend = f"sqlite:///{Path(folder) / 'server.db'}"
            server, url = launch_tracking_server(backend, Path(folder) / "server-artifacts", port)
            stores.append(("MLflow server", url, server))
        try:
            for where, uri, _ in stores:
                tracker = Tracker(uri, f"cost {where}", Path(folder) / "artifacts")
                times = []
                for i in range(args.repeat + 1):  # the first one imports mlflow's model code
                    run_id = tracker.start_run(f"model {i}", None, {}, {})
                    started = time.perf_counter()
                    record_model(tracker, run_id, result, config, data, 0)
                    times.append(time.perf_counter() - started)
                size = _size(tracker, run_id)
                median = statistics.median(times[1:])
                print(
                    f"{where:16s} record_model median {median * 1000:6.1f} ms over {args.repeat} "
                    f"(first {times[0] * 1000:.0f} ms) = {median / 5.0:.3f} of a 5 s trial "
                    f"(target < 0.05); model on disk {size / 1e6:.2f} MB"
                )
        finally:
            for _, _, server in stores:
                if server is not None:
                    from sweeps.server import stop_group

                    stop_group(server)


def _free_port() -> int:
    import socket  # only with a server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _size(tracker: Tracker, run_id: str) -> int:
    total, folders = 0, [MODEL_PATH]
    while folders:
        for item in tracker.client.list_artifacts(run_id, folders.pop()):
            if item.is_dir:
                folders.append(item.path)
            else:
                total += item.file_size or 0
    return total


if __name__ == "__main__":
    main()
