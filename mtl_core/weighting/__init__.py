"""How per-task losses become one update: the loss weightings of ``mtl_core.registry``
(``LOSS_WEIGHTINGS``), one file each; gradient methods (``mtl_core.gradients``) are the other
kind of ``weighting``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtl_core.methods import combination_problems
from mtl_core.registry import GRADIENT_METHODS, LOSS_WEIGHTINGS, Strategy
from mtl_core.weighting.loss_weighting import LossWeighting


def weighting_class(name: str) -> type[LossWeighting]:
    """The class of a loss weighting (torch loads only when an adaptive one is asked for)."""
    return LOSS_WEIGHTINGS.entry(name).load()


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
    **settings: Any,
) -> LossWeighting:
    """``settings``: the run's settings by their study names (``gradnorm_alpha``,
    ``dwa_temperature``, ``seed``, ...); the weighting takes the ones its entry declares."""
    if name in GRADIENT_METHODS:
        raise ValueError(f"{name!r} is a gradient method: see mtl_core.gradients")
    problems = combination_problems(tasks, schedule="joint", weighting=name, weights=weights)
    if problems:
        raise ValueError("; ".join(problems))
    entry = LOSS_WEIGHTINGS.entry(name)
    arguments = entry.arguments(settings)
    if isinstance(entry, Strategy) and entry.seeded:
        arguments["seed"] = int(settings.get("seed", 0))
    return entry.load()(tasks, sizes, weights, **arguments)


__all__ = ["LossWeighting", "build_weighting", "weighting_class", "weighting_problems"]
