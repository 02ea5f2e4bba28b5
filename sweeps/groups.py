"""``sweeps groups STUDY.yaml --budget K``: which tasks should share a network.

Every partition of the tasks into at most K groups (networks) is scored, and the best is
recommended. A task alone in its group scores 0 (it is its own single-task baseline). A task i
in a group G of two or more scores the mean over its partners j of a predicted gain:

- ``--source pairs`` (default): P(i, j) = the pair transfer matrix's cell on validation, the
  validation Δ % of i trained with j alone (``sweeps transfer`` fills it);
- ``--source affinity``: P(i, j) = Z(j→i), the inter-task affinity onto i measured during
  joint training (``training.affinity_every``), averaged over the trials that measured it.

This is the pairwise approximation of Fifty et al. (2021): a group's gain is taken from its
pairs. The search is exhaustive over set partitions (Bell(n): 52 for 5 tasks, 115,975 for 10),
each scored in O(n^2); studies of more than 10 tasks are refused.

Every figure this command chooses with is a validation figure; test figures are reported by
``sweeps report`` for what was chosen.

Affinities are known to predict real multi-task gains poorly on some benchmarks, so every task
set the study actually trained (trials and transfer runs) is compared with its prediction: the
Spearman rank correlation between predicted and trained per-task gains is reported, and where
the two disagree in sign, the trained result is named as the one to trust. With ``pairs`` the
comparison uses sets of three or more tasks (a pair's prediction is its own trained result).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr

from sweeps import record
from sweeps.errors import StudyError
from sweeps.schema import StudySpec
from sweeps.transfer_matrix import pair_matrix, study_pair_runs

MAX_TASKS = 10


@dataclass
class Recommendation:
    groups: list[tuple[str, ...]]
    predicted: float  # sum over tasks of the predicted gain
    measured: float | None  # sum of trained Δ where every group of it was trained
    source: str
    spearman: float | None
    compared: int  # (task, task set) pairs with both a prediction and a trained result
    disagreements: list[str] = field(default_factory=list)


def partitions(items: Sequence[str], max_groups: int) -> Iterator[list[tuple[str, ...]]]:
    """Every partition of ``items`` into at most ``max_groups`` non-empty groups."""

    def grow(index: int, groups: list[list[str]]) -> Iterator[list[tuple[str, ...]]]:
        if index == len(items):
            yield [tuple(g) for g in groups]
            return
        item = items[index]
        for g in groups:
            g.append(item)
            yield from grow(index + 1, groups)
            g.pop()
        if len(groups) < max_groups:
            groups.append([item])
            yield from grow(index + 1, groups)
            groups.pop()

    yield from grow(0, [])


def predicted_gain(task: str, group: Sequence[str], pair: dict[str, dict[str, float]]) -> float:
    partners = [j for j in group if j != task]
    return statistics.fmean(pair[task][j] for j in partners) if partners else 0.0


def recommend(
    tasks: Sequence[str],
    budget: int,
    pair: dict[str, dict[str, float]],
    trained: dict[frozenset[str], dict[str, float]],
    source: str,
) -> Recommendation:
    """The best partition under ``pair`` (P(i, j): predicted gain of i from j), compared with
    ``trained`` (task set -> trained Δ per task)."""
    best, best_score = None, float("-inf")
    for candidate in partitions(list(tasks), budget):
        score = sum(predicted_gain(t, g, pair) for g in candidate for t in g)
        if score > best_score + 1e-12:
            best, best_score = candidate, score
    measured = 0.0
    for group in best:
        if len(group) == 1:
            continue
        found = trained.get(frozenset(group))
        if found is None:
            measured = None
            break
        measured += sum(found.values())
    predicted, actual, disagreements = [], [], []
    # a pair's prediction from the pair matrix is its own trained result: compare larger sets
    smallest = 3 if source == "pairs" else 2
    for group, deltas in sorted(trained.items(), key=lambda kv: sorted(kv[0])):
        if len(group) < smallest:
            continue
        for task, value in sorted(deltas.items()):
            guess = predicted_gain(task, sorted(group), pair)
            predicted.append(guess)
            actual.append(value)
            if (guess > 0) != (value > 0) and abs(value) > 1e-12:
                disagreements.append(
                    f"{task} with {','.join(sorted(set(group) - {task}))}: predicted "
                    f"{'gain' if guess > 0 else 'loss'} ({guess:+.4g}), trained Δ {value:+.2f}% "
                    "(trained in this study: trust the trained result)"
                )
    rho = None
    if len(predicted) >= 3 and len(set(predicted)) > 1 and len(set(actual)) > 1:
        rho = float(spearmanr(predicted, actual).statistic)
    return Recommendation(
        [tuple(sorted(g)) for g in best],
        best_score,
        measured,
        source,
        rho,
        len(predicted),
        disagreements,
    )


def run_groups(spec: StudySpec, budget: int, source: str, console: Console) -> Recommendation:
    tasks = spec.task_names
    if len(tasks) > MAX_TASKS:
        raise StudyError(
            f"tasks: {len(tasks)} tasks; `sweeps groups` searches every partition and takes "
            f"at most {MAX_TASKS}"
        )
    if budget < 1:
        raise StudyError(f"--budget: {budget}; at least 1 network")

    runs = study_pair_runs(spec)
    trained = _trained_sets(runs, tasks)
    if source == "pairs":
        pair = _pairs(spec, tasks, runs)
        unit = "Δ %"
    else:
        pair = _affinities(spec, tasks)
        unit = "affinity"
    rec = recommend(tasks, budget, pair, trained, source)
    table = Table("network", "tasks", f"predicted ({unit}, summed)", "trained validation Δ % (summed)",
                  title=f"recommended grouping of study {spec.name} into at most {budget} network(s)")  # fmt: skip
    for n, group in enumerate(rec.groups, 1):
        guess = sum(predicted_gain(t, group, pair) for t in group)
        found = trained.get(frozenset(group)) if len(group) > 1 else None
        shown = (
            "alone: its baseline"
            if len(group) == 1
            else (f"{sum(found.values()):+.2f}" if found else "not trained")
        )
        table.add_row(str(n), ",".join(group), f"{guess:+.4g}", shown)
    console.print(table)
    console.print(f"predicted total: {rec.predicted:+.4g} ({unit}, from {source})")
    if rec.measured is not None:
        console.print(
            f"trained total: {rec.measured:+.2f} (validation Δ %, from this study's runs)"
        )
    else:
        console.print("trained total: unknown (a recommended group was never trained together)")
    if rec.spearman is not None:
        console.print(
            f"rank correlation (Spearman) of predicted and trained per-task gains over "
            f"{rec.compared} trained (task, task set) results: {rec.spearman:+.2f}"
        )
    else:
        console.print(
            f"rank correlation: too few trained task sets to compare ({rec.compared} results)"
        )
    for line in rec.disagreements:
        console.print(f"disagrees: {line}")
    return rec


def _trained_sets(runs: list, tasks: Sequence[str]) -> dict[frozenset[str], dict[str, float]]:
    """Task set -> mean trained validation Δ per task, over the finished trial and transfer
    runs (validation: the grouping is a choice, and choices are made on validation)."""
    values: dict[frozenset[str], dict[str, list[float]]] = {}
    for run in runs:
        group = record.tasks_of(run)
        if len(group) < 2 or not set(group) <= set(tasks):
            continue
        for t in group:
            value = run.data.metrics.get(record.selected_valid_delta(t))
            if value is not None:
                values.setdefault(frozenset(group), {}).setdefault(t, []).append(value)
    return {g: {t: statistics.fmean(v) for t, v in d.items()} for g, d in values.items()}


def _pairs(spec: StudySpec, tasks: Sequence[str], runs: list) -> dict[str, dict[str, float]]:
    matrix = pair_matrix(tasks, runs, split="valid")  # choose on validation
    missing = [f"{i}+{j}" for i in tasks for j in tasks if i < j and matrix.mean(i, j) is None]
    if missing:
        raise StudyError(
            f"the pair transfer matrix has no result for {', '.join(missing)}: run "
            f"`sweeps transfer {spec.source}` first (or use --source affinity)"
        )
    return {i: {j: matrix.mean(i, j) for j in tasks} for i in tasks}


def _affinities(spec: StudySpec, tasks: Sequence[str]) -> dict[str, dict[str, float]]:
    """P(i, j) = Z(j→i), averaged over complete trials that measured every pair."""
    # here, not at the top: optuna loads only when this runs
    import optuna

    study = None
    if spec.storage is not None or (spec.workdir_path / "optuna.db").exists():
        try:
            study = optuna.load_study(study_name=spec.name, storage=spec.optuna_storage)
        except KeyError:
            study = None
    from sweeps.trial import affinity_of  # (it loads torch: only when affinities are read)

    complete = [
        affinity_of(t.user_attrs.get("affinity"))
        for t in (study.get_trials(deepcopy=False) if study else [])
        if t.state == optuna.trial.TrialState.COMPLETE
    ]
    measured = [a for a in complete if set(a) == set(tasks)]
    if not measured:
        raise StudyError(
            "no complete trial measured the affinities of all tasks: set "
            "`training.affinity_every` (e.g. 10) and run trials that train every task "
            "together (or use --source pairs)"
        )
    return {
        i: {j: statistics.fmean(a[j][i] for a in measured) for j in tasks if j != i} for i in tasks
    }
