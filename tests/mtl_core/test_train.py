"""The training loop on real review sentences: it learns, is reproducible, calls back, and
fails loudly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from mtl_core.data.prepare import TaskFrame, prepare_tasks
from mtl_core.train import Callback, TrainConfig, TrainingDiverged, fit, resolve_device
from tests.helpers import review_tasks


@pytest.fixture(scope="module")
def tasks():
    return review_tasks(400, "accuracy")


CONFIG = dict(hidden_size=32, epochs=3, batch_size=32, lr=0.01, device="cpu")


@pytest.mark.parametrize("schedule", ["joint", "round_robin", "alternate"])
def test_fit_learns_every_task_with_every_schedule(tasks, schedule):
    result = fit(tasks, TrainConfig(schedule=schedule, **CONFIG))
    assert result.tasks == ["imdb", "yelp"] and result.device == "cpu"
    assert len(result.history) == 3
    for task in result.tasks:
        assert result.primary("valid")[task] > 0.6, (schedule, task)  # chance is 0.5
        assert set(result.test[task]) == {"accuracy", "f1", "f1_macro", "auc"}
    first, last = result.history[0].train_loss, result.history[-1].train_loss
    assert all(last[t] < first[t] for t in result.tasks)


def test_same_seed_same_metrics_other_seed_other_metrics(tasks):
    a = fit(tasks, TrainConfig(schedule="alternate", seed=7, **CONFIG))
    b = fit(tasks, TrainConfig(schedule="alternate", seed=7, **CONFIG))
    c = fit(tasks, TrainConfig(schedule="alternate", seed=8, **CONFIG))
    assert a.test == b.test and a.history[-1].train_loss == b.history[-1].train_loss
    assert a.history[-1].train_loss != c.history[-1].train_loss


def test_callbacks_see_every_epoch_and_can_stop_training(tasks):
    class Stop(Exception):
        pass

    class Recorder(Callback):
        def __init__(self):
            self.started, self.epochs = None, []

        def on_train_start(self, names, config):
            self.started = (list(names), config.weighting)

        def on_epoch_end(self, log):
            self.epochs.append((log.epoch, log.epochs, sorted(log.valid), log.weights))
            if log.epoch == 2:
                raise Stop("pruned")

    recorder = Recorder()
    config = TrainConfig(weighting="static", weights={"imdb": 2.0, "yelp": 0.5}, **CONFIG)
    with pytest.raises(Stop, match="pruned"):  # the callback's own exception, unchanged
        fit(tasks, config, [recorder])
    assert recorder.started == (["imdb", "yelp"], "static")
    assert recorder.epochs == [
        (1, 3, ["imdb", "yelp"], {"imdb": 2.0, "yelp": 0.5}),
        (2, 3, ["imdb", "yelp"], {"imdb": 2.0, "yelp": 0.5}),
    ]


def test_a_non_finite_loss_stops_with_the_task_and_step(tasks):
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step \d+ \(imdb=(nan|inf)"):
        fit(tasks, TrainConfig(optimizer="sgd", activation="relu", **{**CONFIG, "lr": 1e30}))


def test_regression_and_multiclass_tasks_train_in_one_network():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    frame = pd.DataFrame(x, columns=list("abcd"))
    frame["y"] = 3 * x[:, 0] - x[:, 1] + 0.1 * rng.normal(size=300)
    frame["k"] = np.digitize(x[:, 2], [-0.5, 0.5]).astype(str)
    tasks, _ = prepare_tasks(
        {
            "reg": TaskFrame(frame=frame, inputs=list("abcd"), target="y", type="regression"),
            "cls": TaskFrame(frame=frame, inputs=list("abcd"), target="k", type="multiclass"),
        }
    )
    result = fit(
        tasks,
        TrainConfig(
            hidden_size=32, epochs=30, lr=0.01, activation="relu", device="cpu", schedule="joint"
        ),
    )
    assert result.test["reg"]["r2"] > 0.8
    assert result.test["cls"]["accuracy"] > 0.7
    assert math.isfinite(result.test["reg"]["rmse"])


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is available; use 'auto' or 'cpu'"):
            resolve_device("cuda")


def test_fit_needs_a_task():
    with pytest.raises(ValueError, match="at least one task"):
        fit([], TrainConfig())
