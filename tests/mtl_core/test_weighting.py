"""Loss weightings combine per-task losses; validation of their settings needs no torch."""

from __future__ import annotations

import pytest
import torch

from mtl_core.weighting import build_weighting, weighting_problems

TASKS = ["a", "b"]
SIZES = {"a": 100, "b": 300}


def test_equal_sums_losses():
    w = build_weighting("equal", TASKS, SIZES, {})
    assert w.weights() == {"a": 1.0, "b": 1.0}
    total = w.combine({"a": torch.tensor(2.0), "b": torch.tensor(3.0)})
    assert total.item() == pytest.approx(5.0)


def test_static_uses_the_given_weights_and_needs_one_per_task():
    w = build_weighting("static", TASKS, SIZES, {"a": 0.25, "b": 2.0})
    assert w.combine({"a": torch.tensor(4.0), "b": torch.tensor(1.0)}).item() == pytest.approx(3.0)
    assert weighting_problems("static", TASKS, {"a": 1.0}) == [
        "`static` weighting needs a weight for every task; none given for b"
    ]
    with pytest.raises(ValueError, match="none given for b"):
        build_weighting("static", TASKS, SIZES, {"a": 1.0})


def test_inverse_size_favours_the_smaller_task_and_averages_one():
    w = build_weighting("inverse_size", TASKS, SIZES, {}).weights()
    assert w["a"] == pytest.approx(3 * w["b"])
    assert sum(w.values()) / len(w) == pytest.approx(1.0)
    same = build_weighting("inverse_size", TASKS, {"a": 50, "b": 50}, {}).weights()
    assert same == {"a": 1.0, "b": 1.0}


def test_unknown_weighting_is_a_problem_not_a_crash():
    assert (
        "use one of equal, static, inverse_size" in weighting_problems("softmax_all", TASKS, {})[0]
    )


def test_combined_loss_carries_gradients():
    x = torch.tensor(1.0, requires_grad=True)
    w = build_weighting("static", TASKS, SIZES, {"a": 2.0, "b": 0.5})
    w.combine({"a": x * 3, "b": x * 4}).backward()
    assert x.grad.item() == pytest.approx(2.0 * 3 + 0.5 * 4)


def _moved(weighting, steps: int) -> float:
    """How far the first log-variance moves in ``steps`` steps on constant losses."""
    model = torch.nn.Linear(2, 1)
    weighting.bind(model, 0.001)
    start = float(weighting.log_vars["a"])
    for _ in range(steps):
        losses = {t: torch.tensor(2.0) for t in ("a", "b")}  # L = 2: s_t heads for log 2
        weighting.combine(losses).backward()
        weighting.step()
    return abs(float(weighting.log_vars["a"]) - start)


def test_uncertainty_settings_are_the_start_and_rate_of_the_log_variances():
    default = build_weighting("uncertainty", ["a", "b"], {}, {})
    assert default.weights() == {"a": 1.0, "b": 1.0}  # s_t = 0: weights start at 1
    default.bind(torch.nn.Linear(2, 1), 0.001)
    assert default._optimizer.param_groups[0]["lr"] == 0.01  # max(model rate, 0.01)
    fast = build_weighting("uncertainty", ["a", "b"], {}, {})
    fast.bind(torch.nn.Linear(2, 1), 0.05)
    assert fast._optimizer.param_groups[0]["lr"] == 0.05
    libmtl = build_weighting(
        "uncertainty", ["a", "b"], {}, {}, uncertainty_init=-0.5, uncertainty_lr=0.001
    )
    assert libmtl.weights()["a"] == pytest.approx(2.718281828**0.5)
    # the rate is the log-variances' own: ten times the rate, about ten times the movement
    slow = _moved(build_weighting("uncertainty", ["a", "b"], {}, {}, uncertainty_lr=0.001), 30)
    quick = _moved(build_weighting("uncertainty", ["a", "b"], {}, {}, uncertainty_lr=0.01), 30)
    assert slow == pytest.approx(0.03, rel=0.05) and quick == pytest.approx(10 * slow, rel=0.1)


def test_gls_is_the_geometric_mean_and_blind_to_a_tasks_units():
    """GLS: the loss is (prod L_t)^(1/T); its gradient weighs each task by G / (T L_t), so a
    constant factor on one loss scales the gradient without turning it."""
    from mtl_core.methods import combination_problems

    assert combination_problems(["a", "b"], schedule="round_robin", weighting="gls")
    gls = build_weighting("gls", ["a", "b"], {}, {})
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    x = torch.tensor([0.5, 1.5])

    def gradient(scale: float) -> torch.Tensor:
        losses = {"a": (w @ x - 1) ** 2 + 1, "b": scale * ((w @ x + 2) ** 2 + 1)}
        (g,) = torch.autograd.grad(gls.combine(losses), w)
        return g

    losses = {"a": torch.tensor(2.0), "b": torch.tensor(8.0)}
    assert float(gls.combine(losses)) == pytest.approx(4.0)
    assert gls.weights() == pytest.approx({"a": 1.0, "b": 0.25})  # 4 / (2 * L_t)
    plain, scaled = gradient(1.0), gradient(100.0)
    assert torch.allclose(scaled, plain * 100**0.5, rtol=1e-5)  # same direction, c^(1/T)


def test_famo_gives_weight_to_the_task_whose_loss_falls_slower():
    """FAMO: the loss's gradient in L_t is the logged weight z_t / (c L_t) (they sum to 1);
    after a step that lowered a's loss by half and b's by a tenth, the logits move weight to b."""
    famo = build_weighting("famo", ["a", "b"], {}, {})
    famo.bind(torch.nn.Linear(2, 1), 0.001)
    losses = {
        "a": torch.tensor(1.0, requires_grad=True),
        "b": torch.tensor(4.0, requires_grad=True),
    }
    total = famo.combine(losses)
    total.backward()
    weights = famo.weights()
    assert sum(weights.values()) == pytest.approx(1.0)
    assert float(losses["a"].grad) == pytest.approx(weights["a"], rel=1e-5)
    assert weights["a"] == pytest.approx(0.8, rel=1e-4)  # z equal: (1/1) / (1/1 + 1/4)
    famo.combine({"a": torch.tensor(1.0), "b": torch.tensor(1.0)})
    famo.losses_after_step({"a": torch.tensor(0.5), "b": torch.tensor(0.9)})
    z = torch.softmax(famo.xi.detach(), 0)
    assert float(z[1]) > 0.5 > float(z[0])


def test_famo_trains_with_its_extra_forward():
    import numpy as np

    from mtl_core import TrainConfig, fit
    from mtl_core.data.arrays import tasks_from_arrays

    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 4)).astype(np.float32)
    tasks = tasks_from_arrays(
        x, {"a": ((x[:, 0] > 0).astype(int), "binary"), "b": (x[:, 1] * 2, "regression")}
    )
    result = fit(tasks, TrainConfig(hidden_size=8, epochs=2, schedule="joint", weighting="famo"))
    weights = result.history[-1].weights
    assert sum(weights.values()) == pytest.approx(1.0, rel=1e-3)
    assert all(np.isfinite(v) for log in result.history for v in log.train_loss.values())
