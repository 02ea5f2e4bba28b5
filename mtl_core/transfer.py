"""Measures of transfer: each task's Δ against its single-task baseline, and Δm.

``Δ_t = 100 · s_t · (M_t − B_t) / |B_t|`` where ``M_t`` is the multi-task model's metric on
task ``t``, ``B_t`` the single-task baseline's and ``s_t`` is +1 when higher is better and −1
for error metrics (mse, rmse, mae). Positive is better; a negative Δ is negative transfer.
``Δm`` is the mean of ``Δ_t`` over the model's tasks: the task-averaged Δ of Vandenhende et
al. (2021), LibMTL's Δp. A baseline of exactly zero (an F1 of 0, say) is compared in
absolute terms: ``Δ_t = 100 · s_t · (M_t − B_t)``.
"""

from __future__ import annotations

from collections.abc import Mapping

from mtl_core.tasks import higher_is_better


def delta(value: float, baseline: float, metric: str) -> float:
    """Relative change in %, sign-adjusted so that positive is better."""
    sign = 1.0 if higher_is_better(metric) else -1.0
    if abs(baseline) < 1e-12:  # a zero baseline has no relative change: compare in absolute terms
        return sign * 100.0 * (value - baseline)
    return sign * 100.0 * (value - baseline) / abs(baseline)


def deltas(
    values: Mapping[str, float], baselines: Mapping[str, float], metrics: Mapping[str, str]
) -> dict[str, float]:
    return {t: delta(values[t], baselines[t], metrics[t]) for t in values}


def delta_m(per_task: Mapping[str, float]) -> float:
    return sum(per_task.values()) / len(per_task)
