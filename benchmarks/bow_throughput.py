"""Bag-of-words training throughput: the sparse first layer against the per-row
sparse-to-dense ``Dataset`` that tutorials use (issue 8).

Data: IMDB (binary) and Yelp (stars mapped to negative / neutral / positive) reviews from
``../shared/data`` (10,000 each; 70% train: 2 x 7,000 rows), one vocabulary of 5,000 words,
one 200-unit sigmoid layer, batches of 64, zipped batches with a summed loss, Adam, 1 thread.

- ``per-row densify``: a ``Dataset`` whose ``__getitem__`` densifies one CSR row and a
  ``DataLoader`` that stacks them (the tutorial way);
- ``dense batches``: whole batches densified at once (``matrix[rows].toarray()``);
- ``mtl_core``: ``fit()`` itself (sparse first layer; its time includes the epoch's validation).

    python benchmarks/bow_throughput.py [--epochs 2] [--data ../shared/data]

Target: at least 5x the per-row loop, aiming at 10x.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mtl_core import TaskFrame, TextFeatures, TrainConfig, fit, prepare_tasks, read_table
from mtl_core import tasks as task_types

ROOT = Path(__file__).resolve().parents[1]
STARS = {1: "negative", 2: "negative", 3: "neutral", 4: "positive", 5: "positive"}


def load(data: Path):
    imdb = read_table(data / "imdb_10k" / "imdb_sample_10k.csv")[["text", "label"]]
    yelp = read_table(data / "yelp_10k" / "yelp.csv")[["text", "stars"]]
    frames = {
        "imdb": TaskFrame(frame=imdb, inputs="text", target="label", type="binary"),
        "yelp": TaskFrame(
            frame=yelp, inputs="text", target="stars", type="multiclass", label_map=STARS
        ),
    }
    tasks, _ = prepare_tasks(frames, {"text": TextFeatures(max_features=5000)})
    return tasks


class DenseRows(Dataset):
    """The tutorial way: one CSR row densified per item."""

    def __init__(self, matrix, y) -> None:
        self.matrix, self.y = matrix, y

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def __getitem__(self, i):
        row = torch.tensor(self.matrix[i].toarray()[0], dtype=torch.float32)
        return row, self.y[i]


class Model(nn.Module):
    def __init__(self, width: int, heads: dict[str, int]) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(width, 200), nn.Sigmoid())
        self.heads = nn.ModuleDict({t: nn.Linear(200, n) for t, n in heads.items()})

    def forward(self, x, task):
        return self.heads[task](self.trunk(x))


def tutorial_epoch_seconds(tasks, per_row: bool, epochs: int) -> float:
    torch.manual_seed(0)
    names = list(tasks)
    width = tasks[names[0]].input_dim
    model = Model(width, {t: tasks[t].spec.head_size for t in names})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for _ in range(epochs):
        if per_row:
            loaders = [
                DataLoader(DenseRows(tasks[t].x["train"], tasks[t].y["train"]), 64, shuffle=True)
                for t in names
            ]
            batches = zip(*loaders, strict=False)
        else:
            orders = [rng.permutation(tasks[t].rows("train")) for t in names]
            batches = zip(
                *[
                    [
                        (
                            torch.from_numpy(tasks[t].x["train"][o[i : i + 64]].toarray()),
                            torch.from_numpy(tasks[t].y["train"][o[i : i + 64]]),
                        )
                        for i in range(0, len(o), 64)
                    ]
                    for t, o in zip(names, orders, strict=True)
                ],
                strict=False,
            )
        for step in batches:
            total = sum(
                task_types.loss(tasks[t].spec, model(x, t), torch.as_tensor(y))
                for t, (x, y) in zip(names, step, strict=True)
            )
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
    return (time.perf_counter() - started) / epochs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tasks = load(args.data)
    rows = sum(t.rows("train") for t in tasks.values())
    print(
        f"{platform.machine()}, torch {torch.__version__}, 1 thread; "
        f"{' + '.join(str(t.rows('train')) for t in tasks.values())} training rows, "
        f"{tasks['imdb'].input_dim} words"
    )
    config = TrainConfig(
        hidden_size=200,
        activation="sigmoid",
        epochs=args.epochs,
        batch_size=64,
        schedule="joint",
        device="cpu",
    )
    fit(tasks, TrainConfig(**{**config.__dict__, "epochs": 1}))  # warm-up
    ours = fit(tasks, config).train_seconds / args.epochs
    dense = tutorial_epoch_seconds(tasks, per_row=False, epochs=args.epochs)
    per_row = tutorial_epoch_seconds(tasks, per_row=True, epochs=args.epochs)
    print("| way | seconds per epoch | rows per second | vs per-row |")
    print("| --- | --- | --- | --- |")
    for label, seconds in (
        ("per-row densify (tutorial Dataset)", per_row),
        ("dense batches", dense),
        ("mtl_core fit (sparse first layer)", ours),
    ):
        print(f"| {label} | {seconds:.2f} | {rows / seconds:,.0f} | {per_row / seconds:.1f}x |")


if __name__ == "__main__":
    main()
