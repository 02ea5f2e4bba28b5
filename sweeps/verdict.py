"""Which configuration wins, chosen on validation only, and what its figures are worth.

The winner is the confirmed configuration with the best validation Δm over its fresh seeds
(``sweeps.confirm``); before any confirmation, the complete trial with the best validation Δm.
Test figures are read for what was chosen and never steer the choice. Every figure comes with
the number of seeds behind it and, with two or more, its 95% interval and whether the interval
excludes zero. This module reads MLflow runs (as ``MlflowClient.search_runs`` returns them)
and nothing else, so ``status``, the dashboard and the report name the same winner.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sweeps import record
from sweeps.record import is_complete, tasks_of

SETTINGS = (
    "model.architecture",
    "model.hidden_size",
    "model.depth",
    "training.schedule",
    "training.weighting",
    "training.lr",
)


@dataclass
class Estimate:
    """A mean over ``seeds`` seeds; ``ci95``: half-width of its 95% Student-t interval."""

    value: float
    seeds: int
    ci95: float | None = None
    significant: float | None = None  # +1 / -1: the interval excludes zero; 0: it does not

    @property
    def noise(self) -> bool:
        return self.significant == 0

    @property
    def one_seed(self) -> bool:
        return self.seeds < 2 or self.ci95 is None

    def text(self) -> str:
        if self.one_seed:
            return f"{self.value:+.2f}% (1 seed: no interval)"
        verdict = "noise: the interval holds 0" if self.noise else "significant"
        return f"{self.value:+.2f}% ± {self.ci95:.2f} ({self.seeds} seeds, {verdict})"


@dataclass
class Winner:
    number: int  # the search trial whose configuration won
    trial_run: str
    confirm_run: str | None
    tasks: list[str]
    settings: dict[str, str]
    valid_delta_m: Estimate
    test_delta_m: Estimate
    test_deltas: dict[str, Estimate] = field(default_factory=dict)
    valid_deltas: dict[str, Estimate] = field(default_factory=dict)
    search_valid_delta_m: float | None = None  # the trial's own, from the search
    confirm_note: str = ""  # why no confirmation stands behind it, when one was tried

    @property
    def confirmed(self) -> bool:
        return self.confirm_run is not None

    @property
    def runs(self) -> list[str]:
        return [r for r in (self.trial_run, self.confirm_run) if r]


def seeds_of(run: Any) -> int:
    params = run.data.params
    if "confirm.seeds" in params:
        return len(params["confirm.seeds"].split(","))
    try:
        return int(params.get("training.seeds", 1))
    except ValueError:
        return 1


def estimate(run: Any, name: str) -> Estimate | None:
    metrics = run.data.metrics
    if name not in metrics or not math.isfinite(metrics[name]):
        return None
    return Estimate(
        metrics[name],
        seeds_of(run),
        metrics.get(name + record.CI95),
        metrics.get(name + record.SIGNIFICANT),
    )


def best_by_validation(runs: Iterable[Any]) -> Any | None:
    """The complete run with the highest ``valid/delta_m`` (ties: the lower trial number)."""
    scored = [r for r in runs if is_complete(r) and estimate(r, record.VALID_DELTA_M) is not None]
    if not scored:
        return None
    return max(
        scored,
        key=lambda r: (r.data.metrics[record.VALID_DELTA_M], -_number(r)),
    )


def _number(run: Any) -> int:
    tags = run.data.tags
    return int(tags.get(record.TRIAL_NUMBER, tags.get(record.CONFIRMS, -1)))


def pick_winner(trial_runs: Sequence[Any], confirm_runs: Sequence[Any] = ()) -> Winner | None:
    confirmed = best_by_validation(confirm_runs)
    by_number = {_number(r): r for r in trial_runs if is_complete(r)}
    if confirmed is not None:
        number = int(confirmed.data.tags[record.CONFIRMS])
        trial = by_number.get(number)
        source = confirmed
    else:
        trial = best_by_validation(trial_runs)
        if trial is None:
            return None
        number, source = _number(trial), trial
    tasks = tasks_of(source)
    params = source.data.params
    return Winner(
        number,
        trial.info.run_id if trial is not None else "",
        confirmed.info.run_id if confirmed is not None else None,
        tasks,
        {k: params[k] for k in SETTINGS if k in params},
        estimate(source, record.VALID_DELTA_M),  # type: ignore[arg-type]
        estimate(source, record.DELTA_M) or Estimate(math.nan, seeds_of(source)),
        {t: e for t in tasks if (e := estimate(source, record.delta(t))) is not None},
        {
            t: e
            for t in tasks
            if (e := estimate(source, record.selected_valid_delta(t))) is not None
        },
        trial.data.metrics.get(record.VALID_DELTA_M) if trial is not None else None,
        "" if confirmed is not None else _confirm_note(confirm_runs),
    )


def _confirm_note(confirm_runs: Sequence[Any]) -> str:
    failed = [r for r in confirm_runs if r.info.status in ("FAILED", "KILLED")]
    if not failed:
        return ""
    run = failed[-1]
    return (
        f"confirmation of trial {run.data.tags.get(record.CONFIRMS)} did not finish: "
        f"{run.data.tags.get(record.ERROR, run.info.status)[:300]}"
    )


def baseline_share(runs: Iterable[Any]) -> tuple[float, float]:
    """(seconds spent training baselines, whole seconds) over trial and confirm runs."""
    baseline = total = 0.0
    for run in runs:
        metrics = run.data.metrics
        baseline += metrics.get(record.BASELINE_S, 0.0)
        total += metrics.get(record.TRIAL_S, 0.0)
    return baseline, total


def share_text(runs: Iterable[Any]) -> str:
    baseline, total = baseline_share(runs)
    if total <= 0:
        return "baselines: no time recorded yet"
    return (
        f"baselines took {baseline:.0f} s of {total:.0f} s of trial time "
        f"({100 * baseline / total:.0f}%)"
    )


def study_runs(
    spec: Any,
    kinds: Sequence[str] = (record.TRIAL, record.CONFIRM, record.BASELINE, record.TRANSFER),
) -> dict[str, list[Any]]:
    """The study's runs of these kinds (trial, confirm, baseline, transfer) from MLflow, in one
    paginated search (empty before its store); the other kinds are left out by the query, not
    read and dropped (`status` needs no baseline run: a study has about as many as trials)."""
    out: dict[str, list[Any]] = {kind: [] for kind in kinds}
    others = [kind for kind in record.KINDS if kind not in kinds]
    for run in record.study_search(spec, record.where(not_kind=others)):
        kind = record.kind_of(run)
        if kind in out:
            out[kind].append(run)
    return out


def winner_lines(winner: Winner | None) -> list[str]:
    """What ``status`` and ``sweeps run`` say of the winner (plain text)."""
    if winner is None:
        return ["winner: no completed trial yet"]
    how = (
        f"confirmed with {winner.valid_delta_m.seeds} fresh seeds"
        if winner.confirmed
        else winner.confirm_note or "not confirmed (search.confirm)"
    )
    tasks = ", ".join(f"{t} {e.text()}" for t, e in winner.test_deltas.items())
    return [
        f"winner (chosen on validation): trial {winner.number} on {','.join(winner.tasks)}, {how}",
        f"  validation Δm {winner.valid_delta_m.text()}",
        f"  test Δm {winner.test_delta_m.text()}; test Δ per task: {tasks}",
        f"  runs: {', '.join(winner.runs)}",
    ]
