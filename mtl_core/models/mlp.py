"""The MLP trunk: ``depth`` layers of ``hidden_size`` units with an activation and dropout.
The first layer is a ``SparseLinear``: it reads CSR batches without densifying them."""

from __future__ import annotations

from torch import nn

from mtl_core.models.sparse_input import SparseLinear

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


def mlp_trunk(
    input_dim: int, hidden_size: int, depth: int, activation: str, dropout: float
) -> nn.Sequential:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r}: use one of {', '.join(ACTIVATIONS)}")
    if depth < 1 or hidden_size < 1:
        raise ValueError("depth and hidden_size must be at least 1")
    layers: list[nn.Module] = []
    width = input_dim
    for layer in range(depth):
        linear = SparseLinear(width, hidden_size) if layer == 0 else nn.Linear(width, hidden_size)
        layers += [linear, ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = hidden_size
    return nn.Sequential(*layers)
