"""Task schedules: which task batches make up each optimiser step of an epoch.

A schedule yields steps; a step is a list of ``(task, row_indices)`` pairs whose losses are
combined into one update.

- ``joint``: every step holds one batch of every task (zipped batches). An epoch lasts as many
  steps as the largest task has batches; a smaller task starts a fresh shuffled pass when it
  runs out, so every row of every task is seen at least once per epoch.
- ``round_robin``: one task per step, in turn (a, b, c, a, b, c, ...); a task that has finished
  its pass drops out of the turn until the epoch ends. Every row is seen once per epoch.
- ``alternate``: one task per step, drawn uniformly at random; an epoch lasts as many steps as
  all tasks have batches together, and a task that runs out starts a fresh shuffled pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np

Step = list[tuple[str, np.ndarray]]


class _Batches:
    """Shuffled batches of one task's training rows, reshuffled at each new pass."""

    def __init__(self, n_rows: int, batch_size: int, rng: np.random.Generator) -> None:
        self.n_rows, self.batch_size, self.rng = n_rows, batch_size, rng
        self.per_pass = max(1, -(-n_rows // batch_size))
        self._queue: list[np.ndarray] = []

    def next(self) -> np.ndarray:
        if not self._queue:
            order = self.rng.permutation(self.n_rows)
            self._queue = [
                order[i : i + self.batch_size] for i in range(0, self.n_rows, self.batch_size)
            ]
            self._queue.reverse()
        return self._queue.pop()


def joint(sizes: Mapping[str, int], batch_size: int, rng: np.random.Generator) -> Iterator[Step]:
    batches = {t: _Batches(n, batch_size, rng) for t, n in sizes.items()}
    for _ in range(max(b.per_pass for b in batches.values())):
        yield [(t, b.next()) for t, b in batches.items()]


def round_robin(
    sizes: Mapping[str, int], batch_size: int, rng: np.random.Generator
) -> Iterator[Step]:
    batches = {t: _Batches(n, batch_size, rng) for t, n in sizes.items()}
    left = {t: b.per_pass for t, b in batches.items()}
    while any(left.values()):
        for t in batches:
            if left[t]:
                left[t] -= 1
                yield [(t, batches[t].next())]


def alternate(
    sizes: Mapping[str, int], batch_size: int, rng: np.random.Generator
) -> Iterator[Step]:
    batches = {t: _Batches(n, batch_size, rng) for t, n in sizes.items()}
    names = list(batches)
    for _ in range(sum(b.per_pass for b in batches.values())):
        t = names[int(rng.integers(len(names)))]
        yield [(t, batches[t].next())]


Schedule = Callable[[Mapping[str, int], int, np.random.Generator], Iterator[Step]]
SCHEDULES: dict[str, Schedule] = {
    "joint": joint,
    "round_robin": round_robin,
    "alternate": alternate,
}


def schedule_steps(
    name: str, sizes: Mapping[str, int], batch_size: int, rng: np.random.Generator
) -> Iterator[Step]:
    if name not in SCHEDULES:
        raise ValueError(f"schedule {name!r}: use one of {', '.join(SCHEDULES)}")
    return SCHEDULES[name](sizes, batch_size, rng)
