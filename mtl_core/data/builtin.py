"""Built-in data sources (``path: builtin:NAME`` in a study): examples and tests need no
download. Each returns a table (a data frame) or, for images, arrays; tasks pick their input
and target columns from it as from any file, and tasks reading the same source share rows.

- ``sincos``: one input ``x`` uniform on [-pi, pi], targets ``sin`` and ``cos`` (plus noise
  ``noise``); the classic two-regression-heads demo.
- ``mmoe``: the synthetic pair of Ma et al. (2018, MMoE): orthogonal unit vectors ``u1, u2``
  in ``d`` dimensions, ``w1 = c u1``, ``w2 = c (p u1 + sqrt(1 - p^2) u2)``,
  ``y_k = w_k^T x + sum_{i=1..m} sin(alpha_i w_k^T x + beta_i) + eps``, ``x ~ N(0, I)``,
  ``eps ~ N(0, 0.01)``; ``correlation`` is p. The realised label correlation (lower than p,
  the sines decorrelate) is reported by ``realised_correlation``.
- ``related``: 30 Gaussian features and three binary labels over the same rows: ``a`` and
  ``b`` from one linear function, ``c`` from an orthogonal one (5% flipped).
- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, scaled to [0, 1]) as arrays:
  ``images`` (rows, 8, 8), ``digit`` (ten classes) and ``odd`` (odd/even).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.data.readers import DataError
from mtl_core.data.settings import ARRAY_SOURCES  # noqa: F401 (re-exported)
from mtl_core.data.synthetic import labelling_directions, noisy_labels

DEFAULTS: dict[str, dict[str, Any]] = {
    "sincos": {"rows": 2000, "noise": 0.0, "seed": 0},
    "mmoe": {"rows": 10000, "correlation": 0.5, "dim": 100, "scale": 1.0, "sines": 10, "seed": 0},
    "related": {"rows": 2000, "features": 30, "noise": 0.05, "seed": 0},
    "digits": {},
}
# each option's range: (lowest, highest, whole number); a bad value used to reach numpy (a
# negative `rows`: a traceback) or memory (`rows: 1e12`)
_ROWS = (10, 1_000_000, True)
_SEED = (0, 2**32 - 1, True)
BOUNDS: dict[str, dict[str, tuple[float, float, bool]]] = {
    "sincos": {"rows": _ROWS, "noise": (0.0, 100.0, False), "seed": _SEED},
    "mmoe": {
        "rows": _ROWS,
        "correlation": (-1.0, 1.0, False),
        "dim": (2, 10_000, True),
        "scale": (1e-6, 1e6, False),
        "sines": (0, 1_000, True),
        "seed": _SEED,
    },
    "related": {
        "rows": _ROWS,
        "features": (2, 10_000, True),
        "noise": (0.0, 0.5, False),
        "seed": _SEED,
    },  # fmt: skip
    "digits": {},
}
MAX_CELLS = 20_000_000  # rows x columns of a generated table: 160 MB of float64


def builtin_names() -> list[str]:
    return sorted(DEFAULTS)


def load_builtin(name: str, options: Mapping[str, Any] | None = None):
    """A built-in source: a ``DataFrame``, or for ``digits`` a dict of arrays."""
    if name not in DEFAULTS:
        raise DataError(f"builtin:{name}: no such source; built-in sources are {builtin_names()}")
    settings = dict(DEFAULTS[name])
    unknown = sorted(set(options or {}) - set(settings))
    if unknown:
        raise DataError(
            f"builtin:{name}: unknown option(s) {unknown}; it takes {sorted(settings) or 'none'}"
        )
    settings.update(options or {})
    _check_ranges(name, settings)
    return globals()[f"_{name}"](**settings)


def _shown(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _check_ranges(name: str, settings: dict[str, Any]) -> None:
    for option, (low, high, whole) in BOUNDS[name].items():
        value = settings[option]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DataError(f"builtin:{name}: option {option} must be a number, got {value!r}")
        if whole and value != int(value):
            raise DataError(f"builtin:{name}: option {option} must be a whole number, got {value}")
        if not low <= value <= high:
            raise DataError(
                f"builtin:{name}: option {option} must lie in [{_shown(low)}, {_shown(high)}], "
                f"got {_shown(value)}"
            )
    columns = settings.get("dim", settings.get("features", 1))
    if "rows" in settings and settings["rows"] * columns > MAX_CELLS:
        raise DataError(
            f"builtin:{name}: rows x columns is {settings['rows'] * columns:,.0f}, more than "
            f"{MAX_CELLS:,}; take fewer rows"
        )


def _sincos(rows: int, noise: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-np.pi, np.pi, size=int(rows))
    return pd.DataFrame(
        {
            "x": x,
            "sin": np.sin(x) + noise * rng.normal(size=x.size),
            "cos": np.cos(x) + noise * rng.normal(size=x.size),
        }
    )


def _mmoe(
    rows: int, correlation: float, dim: int, scale: float, sines: int, seed: int
) -> pd.DataFrame:
    if not -1 <= correlation <= 1:
        raise DataError(f"builtin:mmoe: correlation must lie in [-1, 1], got {correlation}")
    rng = np.random.default_rng(seed)
    u1, u2 = np.linalg.qr(rng.normal(size=(int(dim), 2)))[0].T  # orthonormal
    w1 = scale * u1
    w2 = scale * (correlation * u1 + np.sqrt(1 - correlation**2) * u2)
    alpha, beta = rng.normal(size=int(sines)), rng.normal(size=int(sines))
    x = rng.normal(size=(int(rows), int(dim)))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(int(dim))])
    for k, w in (("y1", w1), ("y2", w2)):
        z = x @ w
        frame[k] = z + np.sin(np.outer(z, alpha) + beta).sum(axis=1) + rng.normal(0, 0.1, len(z))
    return frame


def realised_correlation(frame: pd.DataFrame) -> float:
    """Pearson correlation of the ``mmoe`` source's two labels."""
    return float(np.corrcoef(frame["y1"], frame["y2"])[0, 1])


def _related(rows: int, features: int, noise: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shared, other = labelling_directions(rng, int(features))
    x = rng.normal(size=(int(rows), int(features)))
    frame = pd.DataFrame(x, columns=[f"x{k}" for k in range(int(features))])
    for name, weights in (("a", shared), ("b", shared), ("c", other)):
        frame[name] = noisy_labels(rng, x, weights, noise)
    return frame


def _digits() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits  # here: the study schema reads this module (0.6 s)

    digits = load_digits()
    return {
        "images": (digits.images / 16.0).astype(np.float32),
        "digit": digits.target.astype(np.int64),
        "odd": (digits.target % 2).astype(np.int64),
    }
