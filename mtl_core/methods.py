"""Every method a study can name, with a one-line description, and which combinations can
train. Torch-free: validation and ``sweeps methods`` read it without loading torch.

Combination rules (``combination_problems``):

- gradient methods and ``gradnorm`` combine the gradients of several tasks at once, so they
  need the ``joint`` schedule (every task in every step), at least two tasks, and an
  architecture with shared parameters (not ``soft_sharing``);
- ``gradients: features`` applies to gradient methods that compute task weights (all but
  ``graddrop``); loss weightings ignore the setting;
- ``optimizer_per_task`` gives each task an optimiser of its own, as graph-based alternate
  training does; it needs a schedule that trains one task per step (not ``joint``);
- ``static`` needs a weight for every task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

ARCHITECTURES = {
    "hard_sharing": "one shared trunk, one head per task (Caruana 1997)",
    "soft_sharing": "one tower per task, tied by an L2 penalty on their distance "
    "(model.sharing_penalty)",
    "cross_stitch": "one tower per task, mixed after every layer by learned cross-stitch "
    "units (Misra et al. 2016)",
    "mmoe": "shared experts with one softmax gate per task (Ma et al. 2018; model.experts)",
}
TRUNKS = {
    "auto": "conv for image rows (H×W or H×W×C arrays), mlp otherwise",
    "mlp": "fully connected layers; the first reads sparse bag-of-words rows as they are",
    "conv": "3×3 convolutions with max-pooling, then one fully connected layer",
}
SCHEDULES = {
    "joint": "every step trains one batch of every task (zipped batches, summed loss)",
    "round_robin": "one task per step, in turn",
    "alternate": "one task per step, drawn uniformly at random",
    "proportional": "one task per step, drawn in proportion to its training rows",
    "temperature": "one task per step, drawn in proportion to rows^(1/T) (training.temperature)",
    "sequential": "all epochs of the first task, then all of the next (shows forgetting)",
}
LOSS_WEIGHTINGS = {
    "equal": "every task's loss weighs 1",
    "static": "fixed weights from training.weights",
    "inverse_size": "weights proportional to 1 / training rows",
    "inverse_metric": "weights proportional to 1 / the task's validation metric, updated "
    "each epoch",
    "uncertainty": "learned homoscedastic uncertainty per task (Kendall et al. 2018)",
    "dwa": "dynamic weight average of loss descent rates (Liu et al. 2019)",
    "gradnorm": "learned weights that balance the tasks' gradient norms (Chen et al. 2018; "
    "training.gradnorm_alpha)",
    "rlw": "random loss weights drawn each step (Lin et al. 2021)",
}
GRADIENT_METHODS = {
    "pcgrad": "projects away the conflicting part of task gradients (Yu et al. 2020)",
    "mgda": "minimum-norm point of the convex hull of the task gradients (Sener & Koltun 2018)",
    "cagrad": "conflict-averse gradient descent (Liu et al. 2021)",
    "gradvac": "gradient vaccine: aligns task gradients to a target similarity (Wang et al. 2021)",
    "imtl_g": "impartial MTL: equal projections on the update (Liu et al. 2021)",
    "aligned_mtl": "aligns the principal components of the task gradients (Senushkin et al. 2023)",
    "upgrad": "unconflicting projection of gradients (Quinton & Rey 2024)",
    "graddrop": "drops gradient signs at random by their consistency (Chen et al. 2020)",
    "dualproj": "projects the mean gradient onto the dual cone of the task gradients",
    "nash_mtl": "Nash bargaining solution over task gradients (Navon et al. 2022)",
}
WEIGHTINGS = {**LOSS_WEIGHTINGS, **GRADIENT_METHODS}
GRADIENTS = {
    "parameters": "gradient methods act on the Jacobian of the shared parameters (exact)",
    "features": "they act on the gradients with respect to the shared representation, "
    "then one backward pass through the trunk (MGDA-UB style; cheaper)",
}
NEEDS_EVERY_TASK_PER_STEP = frozenset(GRADIENT_METHODS) | {"gradnorm"}
WEIGHTS_FROM_FEATURES = frozenset(GRADIENT_METHODS) - {"graddrop"}
CATALOGUE = {
    "architecture": ARCHITECTURES,
    "trunk": TRUNKS,
    "schedule": SCHEDULES,
    "weighting": LOSS_WEIGHTINGS,
    "gradient method": GRADIENT_METHODS,
    "gradients": GRADIENTS,
}


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
    for kind, name, known in (
        ("architecture", architecture, ARCHITECTURES),
        ("schedule", schedule, SCHEDULES),
        ("weighting", weighting, WEIGHTINGS),
        ("gradients", gradients, GRADIENTS),
    ):
        if name not in known:
            out.append(f"{kind} {name!r} is not available; use one of {', '.join(known)}")
    if out:
        return out
    if weighting in NEEDS_EVERY_TASK_PER_STEP:
        if schedule != "joint":
            out.append(
                f"`{weighting}` combines every task's gradient in each step: it needs "
                f"schedule `joint`, not `{schedule}`"
            )
        if len(tasks) < 2:
            out.append(f"`{weighting}` needs at least two tasks")
        if architecture == "soft_sharing":
            out.append(f"`{weighting}` acts on shared parameters, and `soft_sharing` has none")
    if gradients == "features" and weighting in GRADIENT_METHODS:
        if weighting not in WEIGHTS_FROM_FEATURES:
            out.append(
                f"`gradients: features` needs a gradient method that computes task weights; "
                f"`{weighting}` does not"
            )
    if optimizer_per_task and schedule == "joint":
        out.append(
            "`optimizer_per_task` needs a schedule that trains one task per step, not `joint`"
        )
    if weighting == "static":
        missing = [t for t in tasks if t not in (weights or {})]
        if missing:
            out.append(
                f"`static` weighting needs a weight for every task; none given for "
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
# settings that only a multi-task run reads
MULTI_TASK_ONLY = frozenset({"temperature", "gradnorm_alpha", "distill_temperature"})


def single_task_model(model: Mapping[str, object]) -> dict[str, object]:
    """A model configuration as it stands for one task: soft sharing and cross-stitch with
    one task are one tower, i.e. hard sharing; settings of other architectures drop out."""
    out = dict(model)
    if out.get("architecture") in ("soft_sharing", "cross_stitch"):
        out["architecture"] = "hard_sharing"
    if out.get("architecture") != "mmoe":
        out.pop("experts", None)
    out.pop("sharing_penalty", None)
    return out
