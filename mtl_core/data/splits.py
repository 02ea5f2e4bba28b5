"""Train / validation / test splits: seeded fractions, stratified for classification."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl_core.data.readers import DataError

SPLITS = ("train", "valid", "test")


def split_frame(
    frame: pd.DataFrame,
    valid: float,
    test: float,
    seed: int,
    stratify: pd.Series | None = None,
) -> dict[str, pd.DataFrame]:
    """Split rows into train/valid/test by fraction; stratified when ``stratify`` is given
    and every class has enough rows, else a plain seeded shuffle."""
    positions = split_positions(len(frame), valid, test, seed, stratify)
    return {split: frame.iloc[rows].reset_index(drop=True) for split, rows in positions.items()}


def split_positions(
    n: int, valid: float, test: float, seed: int, stratify: pd.Series | None = None
) -> dict[str, np.ndarray]:
    """The row positions of each split (sorted), as ``split_frame`` cuts them."""
    check_split_size(n, valid, test)
    n_valid, n_test = round(n * valid), round(n * test)
    index = np.arange(n)
    strat = _usable(stratify, n_valid + n_test, n)
    rest, test_idx = _cut(index, n_test, seed, strat)
    strat_rest = _usable(stratify.iloc[rest] if stratify is not None else None, n_valid, len(rest))
    train_idx, valid_idx = _cut(rest, n_valid, seed + 1, strat_rest)
    return {"train": np.sort(train_idx), "valid": np.sort(valid_idx), "test": np.sort(test_idx)}


def check_split_size(n: int, valid: float, test: float) -> None:
    """Refuse fractions that leave a split without rows."""
    n_valid, n_test = round(n * valid), round(n * test)
    if n - n_valid - n_test < 1 or (valid > 0 and n_valid < 1) or (test > 0 and n_test < 1):
        raise DataError(
            f"{n} rows are too few for a split of valid={valid}, test={test}: "
            "every split needs at least one row"
        )


def can_stratify(labels: pd.Series | None, n: int, valid: float, test: float) -> bool:
    """Whether ``split_positions`` can stratify on ``labels`` in both of its cuts: every
    stratum has a row for each split, and each cut has room for every stratum."""
    if labels is None:
        return False
    n_valid, n_test = round(n * valid), round(n * test)
    strata = labels.astype(str).value_counts()
    cuts = [size for size in (n_valid + n_test, n_valid) if size]
    room = all(len(strata) <= size for size in cuts) and n - n_valid - n_test >= len(strata)
    return strata.min() >= 3 and room


def _cut(index: np.ndarray, size: int, seed: int, strat: np.ndarray | None):
    if size == 0:
        return index, index[:0]
    from sklearn.model_selection import train_test_split  # (scikit-learn only when splitting)

    return train_test_split(index, test_size=size, random_state=seed, stratify=strat)


def _usable(labels: pd.Series | None, size: int, n: int) -> np.ndarray | None:
    """Stratify only where scikit-learn can: each class needs two rows and a place per class."""
    if labels is None or size == 0:
        return None
    counts = labels.astype(str).value_counts()
    if counts.min() < 2 or size < len(counts) or n - size < len(counts):
        return None
    return labels.astype(str).to_numpy()
