"""The first layer over sparse inputs: bag-of-words rows go in as CSR, never densified.

``SparseLinear`` computes ``x @ W + b`` with an ``EmbeddingBag`` in ``sum`` mode whose
per-sample weights are the row's non-zero values: the same function as ``nn.Linear`` on the
dense row, but it touches only the non-zero columns (a review holds ~15 of 5,000 words).
Measured on these machines: 5.5x the per-row densify loop against 2.8x for densifying whole
batches (STACK_NOTES). It also accepts a dense tensor, so callers may still pass one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn


@dataclass
class SparseBatch:
    """CSR rows as the three tensors ``EmbeddingBag`` takes."""

    indices: torch.Tensor  # int64, column of each non-zero
    offsets: torch.Tensor  # int64, where each row starts in ``indices``
    values: torch.Tensor  # float32, the non-zero values
    rows: int

    def to(self, device: torch.device | str) -> SparseBatch:
        return SparseBatch(
            self.indices.to(device), self.offsets.to(device), self.values.to(device), self.rows
        )


def sparse_batch(matrix: sp.csr_matrix, rows: np.ndarray | None = None) -> SparseBatch:
    """The given rows (all when ``rows`` is None) of a CSR matrix as a ``SparseBatch``."""
    part = matrix if rows is None else matrix[rows]
    part = sp.csr_matrix(part)
    return SparseBatch(
        torch.from_numpy(part.indices.astype(np.int64, copy=False)),
        torch.from_numpy(part.indptr[:-1].astype(np.int64, copy=False)),
        torch.from_numpy(part.data.astype(np.float32, copy=False)),
        part.shape[0],
    )


class SparseLinear(nn.Module):
    """``nn.Linear(in_features, out_features)`` for ``SparseBatch`` (or dense) inputs, with
    ``nn.Linear``'s initialisation."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.bag = nn.EmbeddingBag(in_features, out_features, mode="sum")
        self.bias = nn.Parameter(torch.empty(out_features))
        bound = 1 / math.sqrt(in_features) if in_features else 0.0
        nn.init.uniform_(self.bag.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: SparseBatch | torch.Tensor) -> torch.Tensor:
        if isinstance(x, SparseBatch):
            out = self.bag(x.indices, x.offsets, per_sample_weights=x.values)
            return out + self.bias
        return x @ self.bag.weight + self.bias
