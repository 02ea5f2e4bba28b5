"""A 200,000-row mixed-type table: read, check and featurize it, then train two tasks on it
(issue 6: no per-row Python loop; rows per second and peak memory).

Data: rows of the UCI census table (``../shared/data/adult/adult.data``, else the 2,000-row
excerpt in ``examples/census/data``) drawn with replacement to ``--rows`` rows (seeded) and
written as one CSV: 6 numeric and 8 categorical columns with ``?`` as missing, two targets
(income: binary; marital status: 7 classes). The study is the census example's, with one
epoch of the joint schedule (one forward pass per batch for both tasks), batches of 256.

Phases, each timed in this process:

- ``load``: ``load_study_data`` from a cold start (read the CSV, check every column, split,
  fit the ColumnTransformer on training rows, transform every split);
- ``again``: the same call once more (the per-process cache: the file is hashed, not read);
- ``train``: ``fit()`` for one epoch of both tasks (validation and test included).

Peak memory is the process's peak resident set (``ru_maxrss``) after each phase, next to the
resident set after imports.

    python benchmarks/table_throughput.py [--rows 200000] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from mtl_core.train import fit
from sweeps.space import fixed_config
from sweeps.spec import load_spec
from sweeps.study_data import load_study_data

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
]
INPUTS = [c for c in COLUMNS if c not in ("marital_status", "relationship", "income")]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def write_table(source: Path, rows: int, out: Path) -> None:
    frame = pd.read_csv(source, header=None, names=COLUMNS, skipinitialspace=True)
    frame = frame.sample(n=rows, replace=True, random_state=0).reset_index(drop=True)
    frame.to_csv(out, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    source = args.data / "adult" / "adult.data"
    if not source.is_file():
        source = ROOT / "examples" / "census" / "data" / "adult_2000.data"
    folder = Path(tempfile.mkdtemp(prefix="table-bench-"))
    write_table(source, args.rows, folder / "table.csv")
    common = {"path": "table.csv", "inputs": INPUTS, "missing": ["?"]}
    study = {
        "name": "table_bench",
        "tasks": {
            "income": {**common, "target": "income", "type": "binary", "metric": "auc"},
            "marital": {
                **common,
                "target": "marital_status",
                "type": "multiclass",
                "metric": "f1_macro",
            },
        },
        "model": {"hidden_size": 64, "activation": "relu"},
        "training": {"epochs": 1, "schedule": "joint", "batch_size": 256, "device": "cpu"},
    }
    (folder / "study.yaml").write_text(yaml.safe_dump(study))
    spec = load_spec(folder / "study.yaml")
    print(f"# {platform.machine()} {platform.processor()}, torch {torch.__version__}, 1 thread")
    print(
        f"# {args.rows:,} rows from {source}; CSV {(folder / 'table.csv').stat().st_size / 2**20:.1f} MB"
    )
    base = current_mb()
    print(f"resident after imports: {base:.0f} MB")

    started = time.perf_counter()
    data = load_study_data(spec)
    load_s = time.perf_counter() - started
    print(
        f"load: {load_s:.2f} s = {args.rows / load_s:,.0f} rows/s; input width "
        f"{data.space.width}; peak RSS {peak_mb():.0f} MB"
    )
    started = time.perf_counter()
    assert load_study_data(spec) is data
    print(f"again (cached, file hashed): {time.perf_counter() - started:.3f} s")

    config = fixed_config(spec).train_config(seed=0)
    started = time.perf_counter()
    result = fit(data.subset(["income", "marital"]), config)
    train_s = time.perf_counter() - started
    train_rows = data.tasks["income"].rows("train")
    print(
        f"train: 1 epoch of {train_rows:,} rows x 2 tasks in {result.train_seconds:.2f} s = "
        f"{train_rows / result.train_seconds:,.0f} rows/s (fit() incl. evaluation {train_s:.2f} s); "
        f"peak RSS {peak_mb():.0f} MB"
    )
    print(
        f"test: income auc {result.test['income']['auc']:.3f}, "
        f"marital f1_macro {result.test['marital']['f1_macro']:.3f}"
    )
    x = data.tasks["income"].x["train"]
    print(
        f"train matrix: {x.shape[0]:,} x {x.shape[1]} CSR, {x.nnz / x.shape[0]:.1f} non-zeros "
        f"per row, {(x.data.nbytes + x.indices.nbytes + x.indptr.nbytes) / 2**20:.1f} MB"
    )
    np.testing.assert_equal(data.tasks["income"].x is data.tasks["marital"].x, True)


if __name__ == "__main__":
    main()
