"""Which methods can train together, read from the registry's rules (``mtl_core.registry``).
Torch-free: validation and ``sweeps methods`` read it without loading torch.

Combination rules (``combination_problems``):

- a method that combines every task's gradients or losses in each step (gradient methods,
  ``gradnorm``, ``stch``) needs a schedule with every task in every step (``joint``) and at
  least two tasks; one that acts on shared parameters (gradient methods, ``gradnorm``) needs an
  architecture that has them (not ``soft_sharing``);
- ``gradients: features`` applies to every gradient method: those that compute task weights
  take them from the Jacobian of the shared representation, ``graddrop`` drops signs there
  (the paper's place); loss weightings ignore the setting;
- ``optimizer_per_task`` gives each task an optimiser of its own, as graph-based alternate
  training does; it needs a schedule that trains one task per step (not ``joint``);
- ``static`` needs a weight for every task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mtl_core.registry import (
    ARCHITECTURES,
    CATALOGUE,
    GRADIENT_METHODS,
    GRADIENTS,
    LOSS_WEIGHTINGS,
    SCHEDULES,
    TRUNKS,
    WEIGHTINGS,
    Architecture,
    Schedule,
    Strategy,
)

WEIGHTS_FROM_FEATURES = frozenset(
    n for n, e in GRADIENT_METHODS.items() if isinstance(e, Strategy) and e.weights_from_features
)
AGGREGATES_FEATURES = frozenset(
    n for n, e in GRADIENT_METHODS.items() if isinstance(e, Strategy) and e.aggregates_features
)


def combination_problems(
    tasks: Sequence[str],
    *,
    architecture: str = "hard_sharing",
    schedule: str = "round_robin",
    weighting: str = "equal",
    gradients: str = "parameters",
    optimizer_per_task: bool = False,
    weights: Mapping[str, float] | None = None,
) -> list[str]:
    """Why these settings cannot train these tasks together (empty when they can)."""
    out = []
    for registry, name in (
        (ARCHITECTURES, architecture),
        (SCHEDULES, schedule),
        (WEIGHTINGS, weighting),
        (GRADIENTS, gradients),
    ):
        if name not in registry:
            out.append(
                f"{registry.kind} {name!r} is not available; use one of {', '.join(registry)}"
            )
    if out:
        return out
    method, arch, steps = WEIGHTINGS[weighting], ARCHITECTURES[architecture], SCHEDULES[schedule]
    assert isinstance(method, Strategy) and isinstance(arch, Architecture)
    assert isinstance(steps, Schedule)
    if method.combines:
        if not steps.every_task_per_step:
            out.append(
                f"`{weighting}` combines every task's {method.combines} in each step: it needs "
                f"schedule `joint`, not `{schedule}`"
            )
        if len(tasks) < 2:
            out.append(f"`{weighting}` needs at least two tasks")
    if method.shared_parameters and not arch.shared_parameters:
        out.append(f"`{weighting}` acts on shared parameters, and `{architecture}` has none")
    if (
        gradients == "features"
        and method.gradient_method
        and not (method.weights_from_features or method.aggregates_features)
    ):
        out.append(
            f"`gradients: features` needs a gradient method that computes task weights or "
            f"aggregates the representation's gradients; `{weighting}` does neither"
        )
    if optimizer_per_task and steps.every_task_per_step:
        out.append(
            f"`optimizer_per_task` needs a schedule that trains one task per step, not `{schedule}`"
        )
    if method.needs_weights:
        missing = [t for t in tasks if t not in (weights or {})]
        if missing:
            out.append(
                f"`{weighting}` weighting needs a weight for every task; none given for "
                f"{', '.join(missing)}"
            )
    return out


# what a single-task model (a baseline) trains with, whatever the multi-task settings
SINGLE_TASK_TRAINING = {
    "schedule": "round_robin",
    "weighting": "equal",
    "weights": {},
    "optimizer_per_task": False,
    "gradients": "parameters",
    "distill": 0.0,
    "affinity_every": 0,
    "diagnostics_every": 0,
}
# settings that only a multi-task run reads: the schedules' and weightings' hyperparameters
MULTI_TASK_ONLY = frozenset(
    {p.name for p in (*SCHEDULES.params(), *WEIGHTINGS.params())} | {"distill_temperature"}
)


def single_task_model(model: Mapping[str, object]) -> dict[str, object]:
    """A model configuration as it stands for one task: soft sharing and cross-stitch with
    one task are one tower, i.e. hard sharing; settings of other architectures drop out."""
    out = dict(model)
    name = str(out.get("architecture", "hard_sharing"))
    entry = ARCHITECTURES.get(name)
    if isinstance(entry, Architecture) and entry.single_task_as:
        out["architecture"] = name = entry.single_task_as
    own = {p.name for p in ARCHITECTURES[name].params} if name in ARCHITECTURES else set()
    for p in ARCHITECTURES.params():
        if p.name not in own:
            out.pop(p.name, None)
    return out


def baseline_model_setting(name: str) -> bool:
    """Whether a ``model.NAME`` setting reaches a single-task baseline: every setting but the
    hyperparameters of architectures that are another one with one task (soft sharing's
    penalty)."""
    owners = [a for a in ARCHITECTURES.values() if any(p.name == name for p in a.params)]
    return not owners or any(isinstance(a, Architecture) and not a.single_task_as for a in owners)


__all__ = [
    "ARCHITECTURES",
    "CATALOGUE",
    "GRADIENTS",
    "GRADIENT_METHODS",
    "LOSS_WEIGHTINGS",
    "MULTI_TASK_ONLY",
    "SCHEDULES",
    "SINGLE_TASK_TRAINING",
    "TRUNKS",
    "WEIGHTINGS",
    "WEIGHTS_FROM_FEATURES",
    "AGGREGATES_FEATURES",
    "baseline_model_setting",
    "combination_problems",
    "single_task_model",
]
