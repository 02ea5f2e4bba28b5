"""Synthetic tasks with known relatedness, for tests and for checking what a study reports.

``related_tasks`` makes three binary tasks, each with rows of its own of Gaussian inputs:
``a`` and ``b`` are labelled by the same linear function, ``c`` by one orthogonal to it, and a
fraction ``noise`` of labels is flipped. Each task comes as its three splits: few training rows
(sharing matters most when data is scarce) and large validation and test sets (so that the
measured Δ is not noise). Through a narrow shared layer (``hidden_size`` 1 or 2) sharing
must help ``a`` with ``b`` (both need the same direction) and cannot help ``a`` with ``c``
(their directions compete): measured with 40 training rows and 30 features, ``a`` gained
12-14% accuracy from ``b`` and lost 1-17% with ``c`` over four seeds (hidden 1, tanh, joint).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def related_tasks(
    train_rows: int = 40,
    eval_rows: int = 1000,
    features: int = 30,
    noise: float = 0.05,
    seed: int = 0,
) -> dict[str, dict[str, pd.DataFrame]]:
    """``{task: {"train": frame, "valid": frame, "test": frame}}``, columns x0.. and label."""
    rng = np.random.default_rng(seed)
    shared, other = labelling_directions(rng, features)
    columns = [f"x{k}" for k in range(features)]
    out = {}
    sizes = {"train": train_rows, "valid": eval_rows, "test": eval_rows}
    for name, weights in (("a", shared), ("b", shared), ("c", other)):
        out[name] = {}
        for split, rows in sizes.items():
            x = rng.normal(size=(rows, features))
            frame = pd.DataFrame(x, columns=columns)
            frame["label"] = noisy_labels(rng, x, weights, noise)
            out[name][split] = frame
    return out


def labelling_directions(rng: np.random.Generator, features: int) -> tuple[np.ndarray, np.ndarray]:
    """Two labelling directions: a random one, and one orthogonal to it."""
    shared = rng.normal(size=features)
    other = rng.normal(size=features)
    other -= other @ shared / (shared @ shared) * shared
    return shared, other


def noisy_labels(
    rng: np.random.Generator, x: np.ndarray, weights: np.ndarray, noise: float
) -> np.ndarray:
    """``x @ weights > 0`` as 0/1, with a fraction ``noise`` of labels flipped."""
    label = (x @ weights > 0).astype(int)
    flip = rng.random(len(x)) < noise
    return np.where(flip, 1 - label, label)
