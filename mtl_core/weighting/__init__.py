"""How per-task losses become one update. ``WEIGHTINGS`` maps a study's name to a loss
weighting; gradient methods (``mtl_core.gradients``) are the other kind of ``weighting``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtl_core.methods import GRADIENT_METHODS, LOSS_WEIGHTINGS, combination_problems
from mtl_core.weighting.loss_weighting import Equal, InverseSize, LossWeighting, Static

_ADAPTIVE = {
    "inverse_metric": "InverseMetric",
    "uncertainty": "Uncertainty",
    "dwa": "DWA",
    "gradnorm": "GradNorm",
    "rlw": "RLW",
}
WEIGHTINGS: dict[str, Any] = {"equal": Equal, "static": Static, "inverse_size": InverseSize}


def weighting_class(name: str) -> type[LossWeighting]:
    if name in WEIGHTINGS:
        return WEIGHTINGS[name]
    if name in _ADAPTIVE:  # torch loads only when an adaptive method is asked for
        from mtl_core.weighting import adaptive

        return getattr(adaptive, _ADAPTIVE[name])
    raise ValueError(f"weighting {name!r}: use one of {', '.join(LOSS_WEIGHTINGS)}")


def weighting_problems(name: str, tasks: Sequence[str], weights: Mapping[str, float]) -> list[str]:
    """Why this weighting cannot train these tasks (empty when it can), schedule aside."""
    if name not in LOSS_WEIGHTINGS and name not in GRADIENT_METHODS:
        names = ", ".join([*LOSS_WEIGHTINGS, *GRADIENT_METHODS])
        return [f"weighting {name!r} is not available; use one of {names}"]
    return combination_problems(tasks, schedule="joint", weighting=name, weights=weights)


def build_weighting(
    name: str,
    tasks: Sequence[str],
    sizes: Mapping[str, int],
    weights: Mapping[str, float],
    **options: float,
) -> LossWeighting:
    problems = combination_problems(tasks, schedule="joint", weighting=name, weights=weights)
    if name in GRADIENT_METHODS:
        raise ValueError(f"{name!r} is a gradient method: see mtl_core.gradients")
    if problems:
        raise ValueError("; ".join(problems))
    return weighting_class(name)(tasks, sizes, weights, **options)


__all__ = ["WEIGHTINGS", "LossWeighting", "build_weighting", "weighting_problems"]
