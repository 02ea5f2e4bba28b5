"""The pair transfer matrix: for every ordered pair of tasks (i, j), the Δ of task i when it is
trained together with task j and no other task.

Cell (i, j) is the mean of ``delta/i`` (test; ``selected/valid/delta/i`` on validation, which
is what ``sweeps groups`` chooses from) over the finished runs whose task set is exactly
{i, j}: trials of the study that drew that pair, and the runs of ``sweeps transfer``, which
trains every pair on purpose. Trials with three or more tasks do not enter the matrix: in them
task i's Δ mixes the effect of several partners, and splitting it among them would be a guess.
The diagonal is 0 (a task with itself is its own baseline). A cell no run covers is empty.
This module reads MLflow only; ``sweeps.transfer_runs`` trains the pairs.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from sweeps import record

if TYPE_CHECKING:
    from rich.console import Console

    from sweeps.schema import StudySpec


@dataclass
class PairMatrix:
    tasks: list[str]
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # i -> j -> Δs

    def mean(self, i: str, j: str) -> float | None:
        if i == j:
            return 0.0
        found = self.values.get(i, {}).get(j, [])
        return statistics.fmean(found) if found else None

    def count(self, i: str, j: str) -> int:
        return len(self.values.get(i, {}).get(j, []))

    @property
    def covered(self) -> int:
        """Ordered pairs with at least one run."""
        return sum(1 for i in self.tasks for j in self.tasks if i != j and self.count(i, j))

    def to_csv(self) -> str:
        """Rows: the task whose Δ is measured; columns: its partner; then the run counts."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            ["task", *(f"with_{j}" for j in self.tasks), *(f"n_{j}" for j in self.tasks)]
        )
        for i in self.tasks:
            cells = [self.mean(i, j) for j in self.tasks]
            writer.writerow(
                [
                    i,
                    *("" if c is None else f"{c:.4f}" for c in cells),
                    *(self.count(i, j) for j in self.tasks),
                ]
            )
        return out.getvalue()


def pair_matrix(tasks: Sequence[str], runs: Iterable[Any], split: str = "test") -> PairMatrix:
    """The matrix from MLflow runs (FINISHED trial or transfer runs with ``mtl.tasks``), of
    test Δ (``delta/i``, to report) or validation Δ (``selected/valid/delta/i``, to choose)."""
    matrix = PairMatrix(list(tasks))
    for run in runs:
        pair = record.tasks_of(run)
        if len(pair) != 2 or not set(pair) <= set(tasks):
            continue
        for i, j in (pair, pair[::-1]):
            value = run.data.metrics.get(record.pair_delta(split, i))
            if value is not None:
                matrix.values.setdefault(i, {}).setdefault(j, []).append(value)
    return matrix


def study_pair_runs(spec: StudySpec) -> list[Any]:
    """The finished trial and transfer runs of a study with figures of their own ([] before
    its store exists): not pruned or reused trials, and one transfer run per key (the
    earliest), so a configuration is never counted twice."""
    runs = [
        run
        for kind in (record.TRIAL, record.TRANSFER)
        for run in record.study_search(spec, record.of_kind(kind, "FINISHED"))
        if record.has_results(run)
    ]
    first: dict[str, Any] = {}
    for run in sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id)):
        key = run.data.tags.get(record.TRANSFER_KEY)
        if key is not None:
            first.setdefault(key, run)
    return [
        r
        for r in runs
        if r.data.tags.get(record.TRANSFER_KEY) is None
        or first[r.data.tags[record.TRANSFER_KEY]] is r
    ]


def print_matrix(matrix: PairMatrix, console: Console, title: str) -> None:
    table = Table("task \\ with", *matrix.tasks, title=title)
    for i in matrix.tasks:
        cells = []
        for j in matrix.tasks:
            value = matrix.mean(i, j)
            if i == j:
                cells.append("·")
            elif value is None:
                cells.append("")
            else:
                style = "red" if value < 0 else "green"
                n = matrix.count(i, j)
                count = f" (n={n})" if n > 1 else ""
                cells.append(Text.assemble((f"{value:+.2f}", style), count))
        table.add_row(i, *cells)
    console.print(table)


def matrix_from_store(spec: StudySpec) -> PairMatrix | None:
    """The matrix from every pair run recorded so far (for ``sweeps status``), or None."""
    matrix = pair_matrix(spec.task_names, study_pair_runs(spec))
    return matrix if matrix.covered else None
