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
- ``proportional``: as ``alternate``, but a task is drawn with probability proportional to its
  training rows (large tasks are seen more often, small ones are not repeated for nothing).
- ``temperature``: drawn in proportion to ``rows ** (1 / T)``: ``T = 1`` is ``proportional``,
  large ``T`` approaches uniform (``alternate``); ``T`` is ``training.temperature``.
- ``sequential``: all epochs of the first task, then all epochs of the next, ... The loop runs
  ``epochs x tasks`` epochs and validates every task after each, so forgetting shows.

Tasks that share their rows (several targets of one table: the same ``x`` object) are
``groups``: under ``joint`` they get the same batch rows, so that one forward pass serves all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

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


def joint(
    sizes: Mapping[str, int],
    batch_size: int,
    rng: np.random.Generator,
    groups: Mapping[str, object] | None = None,
) -> Iterator[Step]:
    group_of = {t: (groups or {}).get(t, t) for t in sizes}
    streams: dict[object, _Batches] = {}
    for t, n in sizes.items():
        streams.setdefault(group_of[t], _Batches(n, batch_size, rng))
    for _ in range(max(b.per_pass for b in streams.values())):
        drawn = {g: b.next() for g, b in streams.items()}
        yield [(t, drawn[group_of[t]]) for t in sizes]


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


def sampled(
    sizes: Mapping[str, int],
    batch_size: int,
    rng: np.random.Generator,
    temperature: float = 1.0,
) -> Iterator[Step]:
    """One task per step drawn with probability proportional to ``rows ** (1 / temperature)``
    (``proportional``: temperature 1; ``temperature``: the study's T)."""
    batches = {t: _Batches(n, batch_size, rng) for t, n in sizes.items()}
    names = list(batches)
    mass = np.array([max(1, sizes[t]) for t in names], dtype=float) ** (1.0 / temperature)
    probabilities = mass / mass.sum()
    for _ in range(sum(b.per_pass for b in batches.values())):
        t = names[int(rng.choice(len(names), p=probabilities))]
        yield [(t, batches[t].next())]


def sequential(
    sizes: Mapping[str, int], batch_size: int, rng: np.random.Generator, task: str
) -> Iterator[Step]:
    """One pass over ``task``'s rows (the loop picks which task each epoch trains)."""
    batches = _Batches(sizes[task], batch_size, rng)
    for _ in range(batches.per_pass):
        yield [(task, batches.next())]


SCHEDULES = ("joint", "round_robin", "alternate", "proportional", "temperature", "sequential")


def total_epochs(name: str, epochs: int, n_tasks: int) -> int:
    """How many epochs the loop runs: ``epochs`` per task for ``sequential``."""
    return epochs * n_tasks if name == "sequential" else epochs


def schedule_steps(
    name: str,
    sizes: Mapping[str, int],
    batch_size: int,
    rng: np.random.Generator,
    *,
    epoch: int = 1,
    epochs: int = 1,
    temperature: float = 2.0,
    groups: Mapping[str, object] | None = None,
) -> Iterator[Step]:
    """The steps of epoch ``epoch`` (1-based) of a run of ``epochs`` epochs per task."""
    if name == "joint":
        return joint(sizes, batch_size, rng, groups)
    if name == "round_robin":
        return round_robin(sizes, batch_size, rng)
    if name == "alternate":
        return alternate(sizes, batch_size, rng)
    if name == "proportional":
        return sampled(sizes, batch_size, rng, 1.0)
    if name == "temperature":
        if temperature <= 0:
            raise ValueError("the temperature schedule needs training.temperature > 0")
        return sampled(sizes, batch_size, rng, temperature)
    if name == "sequential":
        order = list(sizes)
        return sequential(sizes, batch_size, rng, order[min(len(order) - 1, (epoch - 1) // epochs)])
    raise ValueError(f"schedule {name!r}: use one of {', '.join(SCHEDULES)}")
