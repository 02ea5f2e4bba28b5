"""The search's extension points: Optuna's samplers and pruners a study can name
(``search.sampler``, ``search.pruner``), each an entry of the same kind as ``mtl_core``'s
methods (``mtl_core.registry``): a name, a line, and the factory that builds it
(``sweeps/sampling.py``). Optuna-free: validation and ``sweeps methods`` read it without
loading Optuna."""

from __future__ import annotations

from mtl_core.registry import Entry, Registry

SAMPLERS = Registry(
    "sampler",
    "search.sampler",
    [
        Entry(
            "tpe",
            "Optuna's tree-structured Parzen estimator (default): settings like the good trials'",
            "sweeps.sampling:tpe",
        ),
        Entry("random", "independent uniform draws", "sweeps.sampling:random"),
        Entry(
            "grid",
            "every combination of the searched values once (finite choices, steps or integers)",
            "sweeps.sampling:grid",
        ),
        Entry(
            "cmaes",
            "CMA-ES over the numeric settings; categorical ones drawn at random",
            "sweeps.sampling:cmaes",
        ),
        Entry(
            "nsga2",
            "genetic search for a Pareto front (objective: per_task)",
            "sweeps.sampling:nsga2",
        ),
        Entry("gp", "Gaussian-process Bayesian optimisation", "sweeps.sampling:gp"),
    ],
)
PRUNERS = Registry(
    "pruner",
    "search.pruner",
    [
        Entry("none", "every trial trains all its epochs", "sweeps.sampling:no_pruning"),
        Entry(
            "median",
            "stops a trial whose paired validation Δm is below the median of earlier trials' at "
            "the same epoch (4 startup trials)",
            "sweeps.sampling:median",
        ),
        Entry(
            "hyperband",
            "Hyperband over epochs (from the warm-up to training.epochs, factor 3)",
            "sweeps.sampling:hyperband",
        ),
    ],
)
SEARCH_CATALOGUE = {r.kind: r for r in (SAMPLERS, PRUNERS)}
