"""Schedules: which task batches make up each step, and how many steps an epoch has."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from mtl_core.schedules import schedule_steps

SIZES = {"a": 100, "b": 30, "c": 55}


def _steps(name, sizes=SIZES, batch=10, seed=0):
    return list(schedule_steps(name, sizes, batch, np.random.default_rng(seed)))


def _rows_seen(steps):
    seen: dict[str, list[int]] = {}
    for step in steps:
        for task, rows in step:
            seen.setdefault(task, []).extend(rows.tolist())
    return seen


def test_joint_zips_one_batch_of_every_task_per_step():
    steps = _steps("joint")
    assert len(steps) == 10  # the largest task has 10 batches
    assert all([t for t, _ in step] == ["a", "b", "c"] for step in steps)
    seen = _rows_seen(steps)
    for task, n in SIZES.items():  # every row at least once; smaller tasks start a new pass
        assert set(seen[task]) == set(range(n)), task
    assert len(seen["b"]) == 100  # 3 batches per pass, cycled to 10 steps


def test_round_robin_takes_turns_and_sees_every_row_once():
    steps = _steps("round_robin")
    assert all(len(step) == 1 for step in steps)
    order = [step[0][0] for step in steps]
    assert order[:6] == ["a", "b", "c", "a", "b", "c"]
    assert Counter(order) == {"a": 10, "b": 3, "c": 6}
    seen = _rows_seen(steps)
    for task, n in SIZES.items():
        assert sorted(seen[task]) == list(range(n)), task


def test_alternate_draws_tasks_at_random_and_is_seeded():
    steps = _steps("alternate", seed=3)
    order = [step[0][0] for step in steps]
    assert len(order) == 19 and set(order) == {"a", "b", "c"}
    assert order != [step[0][0] for step in _steps("round_robin")]  # not taking turns
    again = [step[0][0] for step in _steps("alternate", seed=3)]
    other = [step[0][0] for step in _steps("alternate", seed=4)]
    assert order == again and order != other


def test_batches_are_reshuffled_each_pass():
    first, second = (_rows_seen(_steps("round_robin", seed=s))["a"] for s in (0, 0))
    assert first == second
    assert first != _rows_seen(_steps("round_robin", seed=1))["a"]
    assert first != list(range(100))


def test_unknown_schedule_names_the_choices():
    with pytest.raises(ValueError, match="joint, round_robin, alternate"):
        _steps("zigzag")
