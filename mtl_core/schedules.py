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

from mtl_core.registry import SCHEDULES, Schedule

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
    *,
    groups: Mapping[str, object] | None = None,
    **_: object,
) -> Iterator[Step]:
    group_of = {t: (groups or {}).get(t, t) for t in sizes}
    streams: dict[object, _Batches] = {}
    for t, n in sizes.items():
        streams.setdefault(group_of[t], _Batches(n, batch_size, rng))
    for _ in range(max(b.per_pass for b in streams.values())):
        drawn = {g: b.next() for g, b in streams.items()}
        yield [(t, drawn[group_of[t]]) for t in sizes]


def round_robin(
    sizes: Mapping[str, int], batch_size: int, rng: np.random.Generator, **_: object
) -> Iterator[Step]:
    batches = {t: _Batches(n, batch_size, rng) for t, n in sizes.items()}
    left = {t: b.per_pass for t, b in batches.items()}
    while any(left.values()):
        for t in batches:
            if left[t]:
                left[t] -= 1
                yield [(t, batches[t].next())]


def alternate(
    sizes: Mapping[str, int], batch_size: int, rng: np.random.Generator, **_: object
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
    *,
    temperature: float = 1.0,
    **_: object,
) -> Iterator[Step]:
    """One task per step drawn with probability proportional to ``rows ** (1 / temperature)``
    (``proportional``: temperature 1; ``temperature``: the study's T)."""
    if not temperature > 0:
        raise ValueError("the temperature schedule needs training.temperature > 0")
    batches = {t: _Batches(n, batch_size, rng) for t, n in sizes.items()}
    names = list(batches)
    mass = np.array([max(1, sizes[t]) for t in names], dtype=float) ** (1.0 / temperature)
    probabilities = mass / mass.sum()
    for _ in range(sum(b.per_pass for b in batches.values())):
        t = names[int(rng.choice(len(names), p=probabilities))]
        yield [(t, batches[t].next())]


def proportional(
    sizes: Mapping[str, int], batch_size: int, rng: np.random.Generator, **_: object
) -> Iterator[Step]:
    return sampled(sizes, batch_size, rng, temperature=1.0)


def sequential(
    sizes: Mapping[str, int],
    batch_size: int,
    rng: np.random.Generator,
    *,
    epoch: int = 1,
    epochs: int = 1,
    **_: object,
) -> Iterator[Step]:
    """One pass over the rows of the task whose turn epoch ``epoch`` is: ``epochs`` epochs of
    the first task, then of the next."""
    order = list(sizes)
    task = order[min(len(order) - 1, (epoch - 1) // epochs)]
    batches = _Batches(sizes[task], batch_size, rng)
    for _ in range(batches.per_pass):
        yield [(task, batches.next())]


def total_epochs(name: str, epochs: int, n_tasks: int) -> int:
    """How many epochs the loop runs: ``epochs`` per task for ``sequential``."""
    entry = SCHEDULES.entry(name)
    return epochs * n_tasks if isinstance(entry, Schedule) and entry.epochs_per_task else epochs


def schedule_steps(
    name: str,
    sizes: Mapping[str, int],
    batch_size: int,
    rng: np.random.Generator,
    *,
    epoch: int = 1,
    epochs: int = 1,
    groups: Mapping[str, object] | None = None,
    **settings: object,
) -> Iterator[Step]:
    """The steps of epoch ``epoch`` (1-based) of a run of ``epochs`` epochs per task.
    ``settings``: the run's settings by study name; a schedule takes the ones its registry
    entry declares (``temperature``)."""
    entry = SCHEDULES.entry(name)
    context = {"epoch": epoch, "epochs": epochs, "groups": groups}
    return entry.load()(sizes, batch_size, rng, **context, **entry.arguments(settings))
