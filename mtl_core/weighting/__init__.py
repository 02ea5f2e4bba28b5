"""How per-task losses become one update. ``WEIGHTINGS`` maps a study's name to a strategy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mtl_core.weighting.loss_weighting import Equal, InverseSize, LossWeighting, Static

WEIGHTINGS: dict[str, type[LossWeighting]] = {
    "equal": Equal,
    "static": Static,
    "inverse_size": InverseSize,
}


def weighting_problems(name: str, tasks: Sequence[str], weights: Mapping[str, float]) -> list[str]:
    """Why this weighting cannot train these tasks (empty when it can)."""
    if name not in WEIGHTINGS:
        return [f"weighting {name!r} is not available; use one of {', '.join(WEIGHTINGS)}"]
    check = getattr(WEIGHTINGS[name], "problems", None)
    return check(tasks, weights) if check else []


def build_weighting(
    name: str, tasks: Sequence[str], sizes: Mapping[str, int], weights: Mapping[str, float]
) -> LossWeighting:
    problems = weighting_problems(name, tasks, weights)
    if problems:
        raise ValueError("; ".join(problems))
    return WEIGHTINGS[name](tasks, sizes, weights)


__all__ = ["WEIGHTINGS", "LossWeighting", "build_weighting", "weighting_problems"]
