"""What measuring inter-task affinity costs: the same joint training of the sentiment example's
three tasks with ``affinity_every`` off and at 10 and 5 steps (median of ``--repeat`` fits).

    python benchmarks/affinity_cost.py [--repeat 3] [--epochs 8]

The target (issue 4): at most 1.5x the time of the run without it.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from mtl_core import TaskFrame, TrainConfig, fit, prepare_tasks, read_table

DATA = Path(__file__).resolve().parents[1] / "examples" / "sentiment" / "data"
FILES = {
    "imdb": "imdb_labelled.txt",
    "yelp": "yelp_labelled.txt",
    "amazon": "amazon_cells_labelled.txt",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    frames = {
        name: TaskFrame(
            frame=read_table(DATA / file, header=False, columns=["text", "label"]),
            inputs="text",
            target="label",
            type="binary",
        )
        for name, file in FILES.items()
    }
    tasks, _ = prepare_tasks(frames)
    base = dict(hidden_size=200, epochs=args.epochs, batch_size=32, device="cpu", schedule="joint")
    fit(tasks, TrainConfig(**{**base, "epochs": 1}))  # warm-up
    times = {}
    for every in (0, 10, 5):
        runs = [
            fit(tasks, TrainConfig(**base, affinity_every=every)).train_seconds
            for _ in range(args.repeat)
        ]
        times[every] = statistics.median(runs)
    print(f"3 tasks, joint schedule, {args.epochs} epochs, hidden 200, median of {args.repeat}")
    for every, seconds in times.items():
        label = "off" if every == 0 else f"every {every} steps"
        print(f"affinity {label:16s} {seconds:6.2f} s   {seconds / times[0]:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
