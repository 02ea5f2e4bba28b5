"""The first layer over sparse inputs: bag-of-words rows go in as CSR, never densified.

``SparseLinear`` computes ``x @ W + b`` with ``embedding_bag`` in ``sum`` mode weighted by the
row's non-zero values: the same function as ``nn.Linear`` on the dense row, but it touches
only the non-zero columns (a review holds ~15 to ~120 of 5,000 words). Measured on these
machines: 5.5x the per-row densify loop against 2.8x for densifying whole batches
(STACK_NOTES). ``embedding_bag``'s backward has no batching rule, so for torchjd's batched
Jacobians (gradient methods over the shared parameters) the layer switches to gathering the
weight rows and summing them per row (``index_select`` + ``index_add``, ``batched_grads``):
the same values, as fast on short sentences, 2.3x slower on long reviews. It also accepts a
dense tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

EVAL_BATCH = 2048  # rows evaluated at once (no gradients)


@dataclass
class SparseBatch:
    """CSR rows as the three tensors ``EmbeddingBag`` takes."""

    indices: torch.Tensor  # int64, column of each non-zero
    offsets: torch.Tensor  # int64, where each row starts in ``indices``
    row_ids: torch.Tensor  # int64, the row of each non-zero
    values: torch.Tensor  # float32, the non-zero values
    rows: int
    csr: sp.csr_matrix | None = None  # the rows themselves, for the CPU backward pass

    def to(self, device: torch.device | str) -> SparseBatch:
        if torch.device(device).type == "cpu":
            return self
        return SparseBatch(
            self.indices.to(device),
            self.offsets.to(device),
            self.row_ids.to(device),
            self.values.to(device),
            self.rows,
        )


def input_batch(
    matrix: sp.csr_matrix | np.ndarray, rows: np.ndarray | None = None
) -> SparseBatch | torch.Tensor:
    """The given rows of a task's inputs, ready for the model: a ``SparseBatch`` for CSR
    features (text, tables), a float32 tensor for dense arrays (images, dense vectors)."""
    if sp.issparse(matrix):
        return sparse_batch(matrix, rows)
    part = matrix if rows is None else matrix[rows]
    return torch.from_numpy(np.ascontiguousarray(part, dtype=np.float32))


def sparse_batch(matrix: sp.csr_matrix, rows: np.ndarray | None = None) -> SparseBatch:
    """The given rows (all when ``rows`` is None) of a CSR matrix as a ``SparseBatch``."""
    part = matrix if rows is None else matrix[rows]
    part = sp.csr_matrix(part)
    return SparseBatch(
        torch.from_numpy(part.indices.astype(np.int64, copy=False)),
        torch.from_numpy(part.indptr[:-1].astype(np.int64, copy=False)),
        torch.from_numpy(np.repeat(np.arange(part.shape[0], dtype=np.int64), np.diff(part.indptr))),
        torch.from_numpy(part.data.astype(np.float32, copy=False)),
        part.shape[0],
        part,
    )


class _RowsTimesWeight(torch.autograd.Function):
    """``X @ W`` for CSR rows on CPU: ``embedding_bag`` forward, and a backward that computes
    ``X^T @ grad`` with scipy's sparse product (3x faster than ``embedding_bag``'s backward on
    reviews of ~100 words). No double backward: GradNorm and torchjd use other paths."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, batch: SparseBatch) -> torch.Tensor:  # type: ignore[override]
        ctx.csr = batch.csr
        return F.embedding_bag(
            batch.indices, weight, batch.offsets, mode="sum", per_sample_weights=batch.values
        )

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        upstream = grad.detach().contiguous().numpy()
        return torch.from_numpy(np.asarray(ctx.csr.T @ upstream, dtype=np.float32)), None


class SparseLinear(nn.Module):
    """``nn.Linear(in_features, out_features)`` for ``SparseBatch`` (or dense) inputs, with
    ``nn.Linear``'s initialisation."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.batched_grads = False  # True: gather + index_add, ops that torch.vmap can batch
        self.weight = nn.Parameter(torch.empty(in_features, out_features))  # (in, out)
        self.bias = nn.Parameter(torch.empty(out_features))
        bound = 1 / math.sqrt(in_features) if in_features else 0.0
        # the draws of the nn.EmbeddingBag this layer once held (normal, then re-drawn uniform
        # like nn.Linear), so that a seed builds the same model as before: on narrow trunks
        # the outcome hangs on the initial signs (known-truth study: hidden 1 helps a with b
        # on seeds 0-3 with these draws, hurts it on 0-3 without)
        nn.init.normal_(self.weight)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: SparseBatch | torch.Tensor) -> torch.Tensor:
        if isinstance(x, SparseBatch) and not self.batched_grads:
            if x.csr is not None and self.weight.device.type == "cpu":
                return _RowsTimesWeight.apply(self.weight, x) + self.bias
            out = F.embedding_bag(
                x.indices, self.weight, x.offsets, mode="sum", per_sample_weights=x.values
            )
            return out + self.bias
        if isinstance(x, SparseBatch):
            picked = self.weight.index_select(0, x.indices) * x.values.unsqueeze(1)
            out = picked.new_zeros((x.rows, self.out_features)).index_add(0, x.row_ids, picked)
            return out + self.bias
        return x.reshape(x.shape[0], -1) @ self.weight + self.bias
