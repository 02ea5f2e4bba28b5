"""Partial labels (issue 10): rows labelled for some tasks only train every task they carry a
label for; a task's loss is the mean over its labelled rows (a mask), its metrics use its
labelled rows only, and `inverse_size` counts labelled rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from mtl_core import tasks as task_types
from mtl_core.data.prepare import TaskFrame, prepare_tasks
from mtl_core.data.readers import DataError
from mtl_core.models import build_model
from mtl_core.train import TrainConfig, _forward, _label_rows, evaluate, fit


def _table(rows: int = 2000, coverage: float = 0.3, seed: int = 0) -> pd.DataFrame:
    """Task a: sign of x0 + x1, on every row; task b: sign of x0 - x2, on ``coverage``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    frame = pd.DataFrame(x, columns=["x0", "x1", "x2", "x3"])
    frame["a"] = (x[:, 0] + x[:, 1] > 0).astype(int)
    b = np.where(x[:, 0] - x[:, 2] > 0, "up", "down").astype(object)
    b[rng.random(rows) >= coverage] = None
    frame["b"] = b
    return frame


def _prepare(frame: pd.DataFrame, partial: bool = True):
    inputs = ["x0", "x1", "x2", "x3"]
    tasks, _ = prepare_tasks(
        {
            "a": TaskFrame(frame=frame, inputs=inputs, target="a", type="binary"),
            "b": TaskFrame(
                frame=frame, inputs=inputs, target="b", type="binary", partial_labels=partial
            ),
        }
    )
    return tasks


def test_a_task_labelled_on_30_percent_of_rows_trains_with_the_other():
    frame = _table()
    tasks = _prepare(frame)
    a, b = tasks["a"], tasks["b"]
    assert a.x is b.x  # one table: one input matrix, one forward pass per batch
    assert a.labelled is None and b.labelled is not None
    for split in ("train", "valid", "test"):  # stratified on b's labelled flag
        coverage = b.labelled_rows(split) / b.rows(split)
        assert 0.27 < coverage < 0.33, (split, coverage)
    labelled = frame["b"].notna().sum()
    assert sum(b.labelled_rows(s) for s in ("train", "valid", "test")) == labelled
    result = fit(
        tasks, TrainConfig(hidden_size=16, epochs=8, schedule="joint", lr=0.01, batch_size=64)
    )
    assert result.test["a"]["accuracy"] > 0.9
    assert result.test["b"]["accuracy"] > 0.85
    with pytest.raises(DataError, match="empty label.*partial_labels: true"):
        _prepare(frame, partial=False)


def _model(tasks):
    torch.manual_seed(0)
    return build_model("hard_sharing", (4,), [t.spec for t in tasks.values()], 8, 1, "relu", 0.0)


def _losses(tasks, rows: np.ndarray):
    model = _model(tasks)
    groups = {n: id(t.x["train"]) for n, t in tasks.items()}
    step = [(n, rows) for n in tasks]
    losses, _, counts = _forward(
        model,
        step,
        tasks,
        torch.device("cpu"),
        {},
        TrainConfig(),
        _label_rows(list(tasks.values()), groups, "joint"),
    )
    return {n: float(v.detach()) for n, v in losses.items()}, counts


def test_removing_a_label_changes_only_that_tasks_loss():
    tasks = _prepare(_table(rows=600))
    b = tasks["b"]
    rows = np.arange(64)
    before, counts = _losses(tasks, rows)
    in_batch = [p for p in b.labelled["train"] if p < 64]
    assert counts == {"a": 64, "b": len(in_batch)}
    fewer = dataclasses.replace(
        b, labelled={**b.labelled, "train": np.setdiff1d(b.labelled["train"], in_batch[:1])}
    )
    after, counts = _losses({"a": tasks["a"], "b": fewer}, rows)
    assert counts["b"] == len(in_batch) - 1
    assert after["a"] == before["a"]  # a's rows and labels are untouched
    assert after["b"] != before["b"]
    unlabelled = np.setdiff1d(rows, b.labelled["train"])
    y = b.y["train"].copy()
    y[unlabelled] = 1 - y[unlabelled]  # the placeholder of unlabelled rows is never read
    flipped = dataclasses.replace(b, y={**b.y, "train": y})
    again, _ = _losses({"a": tasks["a"], "b": flipped}, rows)
    assert again == before


def test_metrics_use_labelled_rows_only():
    tasks = _prepare(_table(rows=800))
    result = fit(tasks, TrainConfig(hidden_size=8, epochs=2, schedule="joint", lr=0.01))
    b = tasks["b"]
    rows = b.labelled["test"]
    logits = result.model(torch.from_numpy(b.x["test"][rows].toarray()), "b").detach()
    by_hand = task_types.score(b.spec, b.y["test"][rows], task_types.predict(b.spec, logits))
    assert result.test["b"]["accuracy"] == pytest.approx(by_hand["accuracy"])
    y = b.y["test"].copy()
    unlabelled = np.setdiff1d(np.arange(b.rows("test")), rows)
    y[unlabelled] = 1 - y[unlabelled]
    flipped = dataclasses.replace(b, y={**b.y, "test": y})
    scores = evaluate(result.model, [flipped], "test", torch.device("cpu"))
    assert scores["b"] == pytest.approx(result.test["b"])


def test_inverse_size_counts_labelled_rows_and_other_schedules_draw_them():
    tasks = _prepare(_table(rows=1000))
    a, b = tasks["a"], tasks["b"]
    result = fit(
        tasks, TrainConfig(hidden_size=8, epochs=1, schedule="joint", weighting="inverse_size")
    )
    weights = result.history[0].weights
    ratio = weights["b"] / weights["a"]
    assert ratio == pytest.approx(a.labelled_rows("train") / b.labelled_rows("train"))
    # round robin: b's batches come from its labelled rows only (no empty batches, no mask)
    alone = fit({"b": b}, TrainConfig(hidden_size=8, epochs=40, lr=0.02, schedule="round_robin"))
    assert alone.test["b"]["accuracy"] > 0.8


def test_too_few_labelled_rows_are_refused_naming_the_column():
    frame = _table(rows=300, coverage=0.0)
    frame.loc[[3, 7, 11], "b"] = ["up", "down", "up"]
    with pytest.raises(DataError, match="task 'b'.*column 'b'"):
        _prepare(frame)
    frame["b"] = None
    with pytest.raises(DataError, match="column 'b' has no labels"):
        _prepare(frame)


def test_tasks_of_one_table_share_one_trunk_pass_per_batch_with_partial_labels():
    tasks = _prepare(_table(rows=600))
    model = _model(tasks)
    calls = []
    shared = model.shared
    model.shared = lambda x: calls.append(1) or shared(x)
    groups = {n: id(t.x["train"]) for n, t in tasks.items()}
    rows = np.arange(64)
    step = [(n, rows) for n in tasks]
    config = TrainConfig()
    _forward(
        model,
        step,
        tasks,
        torch.device("cpu"),
        {},
        config,
        _label_rows(list(tasks.values()), groups, "joint"),
    )
    assert len(calls) == 1  # a and b (partially labelled) read one batch through one pass
    calls.clear()
    _forward(
        model,
        step,
        tasks,
        torch.device("cpu"),
        {},
        config,
        _label_rows(list(tasks.values()), groups, "round_robin"),
    )
    assert len(calls) == 2  # outside `joint`, b draws its own labelled rows
