"""Nash-MTL's solver, watched. torchjd's ``NashMTL`` solves a small convex problem (cvxpy,
ECOS, up to ``optim_niter`` iterations a step) for the task weights; when a solve raises or
ends with a status other than ``optimal``, it falls back to the iterate it had and says
nothing; when that happens on the step's first iteration, the step keeps the previous step's
weights. In real fits that happened in 1–2 of 66 steps. This counts, per epoch, the steps
whose weights are the previous step's after a failed solve (``nash_mtl/solver_failures``,
beside ``nash_mtl/steps``, the steps solved for), and warns once per process with the
solver's own note, so a study can tell "Nash-MTL's weights" from "the weights of an earlier
step". A failure later in a step's iterations leaves a less converged answer, not counted.

It wraps two methods of torchjd's weighting instance (``_init_optim_problem``, which builds the
cvxpy problem, and ``_solve_optimization``, one step's solves) without changing what they
compute; torchjd 0.18's private names, checked by ``tests/mtl_core/test_solver_watch.py``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

_WARNED = False


class SolverWatch:
    def __init__(self, aggregator: Any, metric_prefix: str = "nash_mtl") -> None:
        self.prefix = metric_prefix
        self.failures = 0  # this epoch
        self.steps = 0  # this epoch: steps whose weights were solved for
        self.total_failures = 0
        self.last_note = ""
        self._step_failed = False
        weighting = aggregator.weighting
        build, solve_step = weighting._init_optim_problem, weighting._solve_optimization

        def init_problem() -> None:
            build()
            solve = weighting.prob.solve

            def watched(*args: Any, **kwargs: Any) -> Any:
                try:
                    result = solve(*args, **kwargs)
                except Exception as exc:  # torchjd catches it and keeps the old weights
                    self._failed(f"{type(exc).__name__}: {exc}")
                    raise
                if weighting.prob.status != "optimal":
                    self._failed(f"the solver ended with status {weighting.prob.status!r}")
                return result

            weighting.prob.solve = watched

        def one_step(gtg: Any) -> Any:
            self._step_failed = False
            before = getattr(weighting, "prvs_alpha", None)
            before = None if before is None else np.array(before, copy=True)
            weights = solve_step(gtg)
            self.steps += 1
            kept = before is not None and np.array_equal(np.asarray(weights), before)
            if self._step_failed and kept:  # the solver's answer was not used at all
                self.failures += 1
                self.total_failures += 1
                _warn_once(self.last_note)
            return weights

        weighting._init_optim_problem = init_problem
        weighting._solve_optimization = one_step

    def _failed(self, note: str) -> None:
        self._step_failed = True
        self.last_note = note

    def epoch_metrics(self) -> dict[str, float]:
        out = {
            f"{self.prefix}/solver_failures": float(self.failures),
            f"{self.prefix}/steps": float(self.steps),
        }
        self.failures = self.steps = 0
        return out


def _warn_once(note: str) -> None:
    global _WARNED
    if _WARNED:
        return
    _WARNED = True
    warnings.warn(
        f"Nash-MTL's solver failed on a step ({note}); that step kept the previous weights. "
        "Each epoch's count is the metric nash_mtl/solver_failures.",
        RuntimeWarning,
        stacklevel=2,
    )
