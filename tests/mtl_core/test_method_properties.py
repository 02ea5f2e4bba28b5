"""Each method checked against the property that defines it, on real models and data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from sklearn.datasets import load_digits

from mtl_core import TaskFrame, TrainConfig, fit, prepare_tasks
from mtl_core.data.arrays import tasks_from_arrays
from mtl_core.data.synthetic import related_tasks
from mtl_core.gradients import GradientMethod
from mtl_core.models import CrossStitch, HardSharing, Trunk, build_model
from mtl_core.models.sparse_input import input_batch
from mtl_core.tasks import loss
from mtl_core.weighting import build_weighting

COLUMNS = [f"x{k}" for k in range(30)]


def _conflicting_tasks(rows: int = 256, seed: int = 0):
    """Two binary tasks over the same rows with opposite labels: their gradients conflict."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6)).astype(np.float32)
    a = (x @ rng.normal(size=6) > 0).astype(int)
    return tasks_from_arrays(x, {"a": (a, "binary"), "b": (1 - a, "binary")}, seed=seed)


def _task_gradients(model, tasks, rows):
    """Each task's gradient of the shared parameters, flattened (autograd, one task at a time)."""
    shared = list(model.shared_parameters())
    out = []
    for name, task in tasks.items():
        x = input_batch(task.x["train"], rows)
        y = torch.from_numpy(task.y["train"][rows])
        grads = torch.autograd.grad(loss(task.spec, model(x, name), y), shared)
        out.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(out)


def _step_gradient(name: str, mode: str, model, tasks, rows) -> tuple[torch.Tensor, dict]:
    """The shared-parameter update a gradient method puts in ``.grad`` for one batch."""
    model.zero_grad()
    losses, features = {}, {}
    x = input_batch(next(iter(tasks.values())).x["train"], rows)
    z = model.shared(x)
    for t, task in tasks.items():
        y = torch.from_numpy(task.y["train"][rows])
        losses[t] = loss(task.spec, model.head(t, z, x), y)
        features[t] = z
    weights = GradientMethod(name, list(tasks), mode).backward(model, losses, features)
    grad = torch.cat([p.grad.reshape(-1) for p in model.shared_parameters()])
    return grad, weights


def _model(tasks, hidden=8, seed=0):
    torch.manual_seed(seed)
    first = next(iter(tasks.values()))
    return build_model(
        "hard_sharing", first.input_shape, [t.spec for t in tasks.values()], hidden, 1, "tanh", 0.0
    )


def test_pcgrad_update_conflicts_with_no_task_while_the_plain_sum_does():
    tasks = _conflicting_tasks()
    rows = np.arange(64)
    for seed in range(50):  # the first initialisation under which the two gradients conflict
        model = _model(tasks, seed=seed)
        jacobian = _task_gradients(model, tasks, rows)
        if float(jacobian[0] @ jacobian[1]) < 0:
            break
    assert float(jacobian[0] @ jacobian[1]) < 0  # the tasks conflict
    grad, _ = _step_gradient("pcgrad", "parameters", model, tasks, rows)
    # with two tasks, each projected gradient is orthogonal to the other task's gradient, so
    # the PCGrad update has a non-negative inner product with every task gradient
    assert all(float(grad @ g) >= -1e-6 for g in jacobian)
    # it is the sum of the projected gradients, and they no longer conflict with each other
    g1, g2 = jacobian.double()
    p1 = g1 - (g1 @ g2) / (g2 @ g2) * g2
    p2 = g2 - (g2 @ g1) / (g1 @ g1) * g1
    assert float(p1 @ g2) == pytest.approx(0, abs=1e-9) and float(p2 @ g1) == pytest.approx(
        0, abs=1e-9
    )
    assert float(p1 @ p2) >= 0
    assert torch.allclose(grad.double(), p1 + p2, rtol=1e-4, atol=1e-7)
    assert not torch.allclose(grad, jacobian.sum(dim=0), atol=1e-6)  # not the plain sum


def _min_norm_weights(jacobian: np.ndarray) -> np.ndarray:
    n = len(jacobian)
    gram = jacobian @ jacobian.T
    result = minimize(
        lambda w: w @ gram @ w,
        np.full(n, 1 / n),
        jac=lambda w: 2 * gram @ w,
        bounds=[(0, 1)] * n,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    return result.x


def test_mgda_update_is_the_min_norm_point_of_the_convex_hull():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    w = rng.normal(size=(3, 6))
    tasks = tasks_from_arrays(
        x,
        {
            "a": ((x @ w[0] > 0).astype(int), "binary"),
            "b": ((x @ w[1] > 0).astype(int), "binary"),
            "c": (x @ w[2], "regression"),
        },
    )
    model = _model(tasks)
    rows = np.arange(64)
    jacobian = _task_gradients(model, tasks, rows).double().numpy()
    grad, weights = _step_gradient("mgda", "parameters", model, tasks, rows)
    best = _min_norm_weights(jacobian) @ jacobian
    assert np.linalg.norm(grad.double().numpy()) == pytest.approx(np.linalg.norm(best), rel=2e-2)
    assert np.linalg.norm(grad.double().numpy() - best) <= 0.05 * np.linalg.norm(best)
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)  # a convex combination
    assert all(v >= -1e-6 for v in weights.values())
    # no other point of the hull is shorter (random convex combinations)
    for _ in range(200):
        lam = rng.dirichlet(np.ones(3))
        assert np.linalg.norm(lam @ jacobian) >= np.linalg.norm(best) - 1e-9


def test_feature_gradients_give_the_min_norm_weights_of_the_feature_jacobian():
    tasks = _conflicting_tasks(seed=2)
    model = _model(tasks)
    rows = np.arange(64)
    x = input_batch(tasks["a"].x["train"], rows)
    z = model.shared(x)
    rows_j = []
    for t, task in tasks.items():
        y = torch.from_numpy(task.y["train"][rows])
        (g,) = torch.autograd.grad(loss(task.spec, model.head(t, z, x), y), z, retain_graph=True)
        rows_j.append(g.reshape(-1))
    jacobian = torch.stack(rows_j).double().numpy()
    _, weights = _step_gradient("mgda", "features", model, tasks, rows)
    expected = _min_norm_weights(jacobian)
    assert [weights["a"], weights["b"]] == pytest.approx(list(expected), abs=2e-2)


def _noisy_regression_pair(noise_a: float, noise_b: float, rows: int = 2000):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 5)).astype(np.float32)
    signal = x @ rng.normal(size=5)
    return tasks_from_arrays(
        x,
        {
            "clean": (signal + noise_a * rng.normal(size=rows), "regression"),
            "noisy": (signal + noise_b * rng.normal(size=rows), "regression"),
        },
    )


def test_uncertainty_learns_a_smaller_weight_for_the_noisier_task():
    tasks = _noisy_regression_pair(0.1, 3.0)
    config = TrainConfig(
        schedule="joint", weighting="uncertainty", hidden_size=16, epochs=8, lr=0.01, device="cpu"
    )
    weights = fit(tasks, config).history[-1].weights
    assert weights["noisy"] < 0.5 * weights["clean"]


def test_gradnorm_moves_the_gradient_norms_toward_balance():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(512, 6)).astype(np.float32)
    tasks = tasks_from_arrays(
        x,
        {
            "reg": (x @ rng.normal(size=6) * 3, "regression"),
            "cls": ((x[:, 0] > 0).astype(int), "binary"),
        },
        valid=0.1,
        test=0.1,
    )
    torch.manual_seed(0)
    model = HardSharing(Trunk((6,), 16, 2, "tanh"), [t.spec for t in tasks.values()])
    weighting = build_weighting("gradnorm", list(tasks), {}, {}, gradnorm_alpha=0.0)
    weighting.bind(model, 0.01)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    spreads = []
    for _ in range(300):
        rows = rng.choice(tasks["reg"].rows("train"), 64, replace=False)
        xb = input_batch(tasks["reg"].x["train"], rows)
        losses = {
            t: loss(task.spec, model(xb, t), torch.from_numpy(task.y["train"][rows]))
            for t, task in tasks.items()
        }
        optimizer.zero_grad()
        weighting.combine(losses).backward()
        weighting.after_backward()
        optimizer.step()
        weighting.step()
        norms = weighting.last_norms
        spreads.append(max(norms.values()) / min(norms.values()))
    weights = weighting.weights()
    assert spreads[0] > 1.5  # the tasks start unbalanced
    assert np.mean(spreads[-20:]) < 0.5 * spreads[0]  # and end much closer to balance
    assert sum(weights.values()) == pytest.approx(2.0, rel=1e-4)  # renormalised to T
    assert weights["reg"] != pytest.approx(weights["cls"], rel=0.05)


def test_cross_stitch_with_identity_units_equals_separate_towers():
    tasks = _conflicting_tasks()
    specs = [t.spec for t in tasks.values()]
    torch.manual_seed(0)
    stitched = CrossStitch(Trunk((6,), 8, 2, "relu"), specs, self_weight=1.0)
    x = input_batch(tasks["a"].x["train"], np.arange(32))
    for i, name in enumerate(tasks):
        alone = HardSharing(Trunk((6,), 8, 2, "relu"), specs)
        tower = [layer for block in stitched.towers[i] for layer in block]
        alone.trunk.load_state_dict(torch.nn.Sequential(*tower).state_dict())
        alone.heads.load_state_dict(stitched.heads.state_dict())
        assert torch.allclose(stitched(x, name), alone(x, name), atol=1e-6)
    # a task's loss does not reach the other tower while the units are the identity
    out = stitched(x, "a").sum()
    grads = torch.autograd.grad(out, list(stitched.towers[1].parameters()), allow_unused=True)
    assert all(g is None or float(g.abs().max()) == 0 for g in grads)
    # with the paper's initial units, it does
    mixed = CrossStitch(Trunk((6,), 8, 2, "relu"), specs)
    grads = torch.autograd.grad(mixed(x, "a").sum(), list(mixed.towers[1].parameters()))
    assert any(float(g.abs().max()) > 0 for g in grads)


def test_sequential_training_lowers_the_first_task_after_the_second_is_trained():
    data = related_tasks(train_rows=400, eval_rows=400, seed=0)
    frames = {n: data[n] for n in ("a", "c")}  # c's labels are orthogonal to a's
    tasks, _ = prepare_tasks(
        {
            n: TaskFrame(inputs=COLUMNS, target="label", type="binary", metric="accuracy", splits=s)
            for n, s in frames.items()
        }
    )
    config = TrainConfig(
        schedule="sequential", hidden_size=1, activation="tanh", epochs=20, lr=0.05, device="cpu"
    )
    history = fit(tasks, config).history
    assert len(history) == 40  # epochs per task x tasks
    assert set(history[0].train_loss) == {"a"} and set(history[-1].train_loss) == {"c"}
    after_a = history[19].valid["a"]["accuracy"]
    after_c = history[-1].valid["a"]["accuracy"]
    assert after_a > 0.85
    assert after_c < after_a - 0.08  # forgetting, made visible (measured: 0.92 -> 0.78)


def test_mmoe_gates_are_distributions_and_experts_are_the_shared_parameters():
    tasks = _conflicting_tasks()
    model = build_model(
        "mmoe", (6,), [t.spec for t in tasks.values()], 8, 1, "relu", 0.0, experts=3
    )
    x = input_batch(tasks["a"].x["train"], np.arange(16))
    gates = model.gate_weights(x, "a")
    assert gates.shape == (16, 3)
    assert torch.allclose(gates.sum(dim=1), torch.ones(16))
    shared = {id(p) for p in model.shared_parameters()}
    assert shared == {id(p) for p in model.experts.parameters()}
    own = {id(p) for p in model.task_parameters("a")}
    assert not shared & own and {id(p) for p in model.gates["a"].parameters()} <= own


def test_soft_sharing_penalty_pulls_the_towers_together():
    tasks = _conflicting_tasks()

    def distance(penalty: float) -> float:
        config = TrainConfig(
            architecture="soft_sharing",
            sharing_penalty=penalty,
            schedule="joint",
            hidden_size=8,
            epochs=60,
            lr=0.01,
            device="cpu",
        )
        model = fit(tasks, config).model
        a, b = (torch.cat([p.reshape(-1) for p in t.parameters()]) for t in model.towers.values())
        return float((a - b).detach().norm())

    assert distance(10.0) < 0.2 * distance(0.0)


def test_task_sampling_schedules_follow_size_and_temperature():
    from mtl_core.schedules import schedule_steps

    sizes = {"big": 6400, "small": 640}
    rng = np.random.default_rng(0)

    def share_of_big(name: str, temperature: float = 2.0) -> float:
        steps = list(schedule_steps(name, sizes, 64, rng, temperature=temperature))
        assert len(steps) == 110  # as many steps as both tasks have batches
        return sum(step[0][0] == "big" for step in steps) / len(steps)

    assert share_of_big("proportional") == pytest.approx(10 / 11, abs=0.06)
    assert share_of_big("temperature", 2.0) == pytest.approx(10**0.5 / (10**0.5 + 1), abs=0.08)
    assert share_of_big("temperature", 1000.0) == pytest.approx(0.5, abs=0.12)


def test_one_optimiser_per_task_keeps_moments_of_its_own():
    from mtl_core.train import _optimizers

    tasks = _conflicting_tasks()
    config = TrainConfig(schedule="alternate", optimizer_per_task=True, device="cpu")
    model = _model(tasks)
    optimizers = _optimizers(config, model, list(tasks), torch.device("cpu"))
    assert set(optimizers) == {"a", "b"}
    heads_a = {id(p) for p in model.task_parameters("a")}
    in_a = {id(p) for g in optimizers["a"].param_groups for p in g["params"]}
    in_b = {id(p) for g in optimizers["b"].param_groups for p in g["params"]}
    assert heads_a <= in_a and not heads_a & in_b
    result = fit(tasks, TrainConfig(schedule="alternate", optimizer_per_task=True, epochs=3))
    assert result.primary()["a"] > 0.6
    with pytest.raises(ValueError, match="optimizer_per_task.*not `joint`"):
        fit(tasks, TrainConfig(schedule="joint", optimizer_per_task=True))


def test_dwa_inverse_metric_and_rlw_weights_follow_their_definitions():
    tasks = ["a", "b"]
    dwa = build_weighting("dwa", tasks, {}, {})
    dwa.end_epoch(1, {"a": 1.0, "b": 1.0}, {})
    assert dwa.weights() == {"a": 1.0, "b": 1.0}
    dwa.end_epoch(2, {"a": 0.5, "b": 1.0}, {})  # a's loss halved, b's stayed
    w = dwa.weights()
    expected_a = 2 * np.exp(0.5 / 2) / (np.exp(0.5 / 2) + np.exp(1.0 / 2))
    assert w["a"] == pytest.approx(expected_a) and w["a"] + w["b"] == pytest.approx(2.0)
    inverse = build_weighting("inverse_metric", tasks, {}, {})
    inverse.end_epoch(1, {}, {"a": 0.9, "b": 0.6})
    w = inverse.weights()
    assert w["b"] / w["a"] == pytest.approx(1.5) and sum(w.values()) == pytest.approx(2.0)
    rlw = build_weighting("rlw", tasks, {}, {}, seed=0)
    draws = []
    for _ in range(50):
        rlw.combine({"a": torch.tensor(1.0), "b": torch.tensor(1.0)})
        draws.append(rlw.weights())
    assert all(sum(d.values()) == pytest.approx(2.0) for d in draws)
    assert len({round(d["a"], 6) for d in draws}) == 50  # new weights every step


def test_distilled_student_follows_its_teacher():
    from mtl_core.distill import teacher_logits

    tasks = _conflicting_tasks(rows=600)
    # the model as training leaves it (the best validation epoch would be the least odd one)
    base = TrainConfig(
        schedule="joint", hidden_size=8, epochs=1, lr=0.01, device="cpu", select="last_epoch"
    )
    # a deliberately odd teacher: logits that are the negative of a trained model's
    trained = fit(tasks, TrainConfig(schedule="joint", hidden_size=8, epochs=8, lr=0.01))
    teachers = {t: -teacher_logits(trained.model, task) for t, task in tasks.items()}

    def agreement(distill: float) -> float:
        config = TrainConfig(**{**base.__dict__, "distill": distill, "epochs": 8})
        student = fit(tasks, config, teachers=teachers).model
        ours = teacher_logits(student, tasks["a"]).reshape(-1) > 0
        theirs = teachers["a"].reshape(-1) > 0
        return float((ours == theirs).mean())

    assert agreement(1.0) > 0.85  # soft targets only: the student copies the teacher
    assert agreement(0.0) < 0.2  # labels only: it disagrees with this odd teacher
    with pytest.raises(ValueError, match="teacher for every task"):
        fit(tasks, TrainConfig(distill=0.5))


def test_conv_trunk_learns_digits_and_odd_even_in_one_forward_pass():
    digits = load_digits()
    tasks = tasks_from_arrays(
        digits.images / 16.0,
        {"digit": (digits.target, "multiclass"), "odd": (digits.target % 2, "binary")},
    )
    assert tasks["digit"].x["train"] is tasks["odd"].x["train"]
    config = TrainConfig(
        schedule="joint", hidden_size=64, epochs=6, activation="relu", lr=0.003, device="cpu"
    )
    result = fit(tasks, config)
    assert isinstance(result.model.trunk[1], torch.nn.Conv2d)  # auto: images get the conv trunk
    scores = result.primary()
    assert scores["digit"] > 0.9 and scores["odd"] > 0.9


def test_every_gradient_method_trains_through_a_sparse_first_layer():
    data = related_tasks(train_rows=120, eval_rows=60)
    tasks, _ = prepare_tasks(
        {
            n: TaskFrame(inputs=COLUMNS, target="label", type="binary", splits=s)
            for n, s in data.items()
        }
    )
    from mtl_core.gradients import build_aggregator
    from mtl_core.methods import AGGREGATES_FEATURES, GRADIENT_METHODS, WEIGHTS_FROM_FEATURES

    for name in GRADIENT_METHODS:
        for mode in ("parameters", "features"):
            if mode == "features" and name not in WEIGHTS_FROM_FEATURES | AGGREGATES_FEATURES:
                continue  # excess_mtl: refused (its state is per parameter)
            config = TrainConfig(
                schedule="joint", weighting=name, gradients=mode, hidden_size=4, epochs=1
            )
            result = fit(tasks, config)
            assert set(result.primary()) == {"a", "b", "c"}
            if hasattr(build_aggregator(name, 3), "weighting"):  # methods that weigh tasks
                assert set(result.history[0].weights) == {"a", "b", "c"}


def test_impossible_combinations_are_refused_with_the_reason():
    tasks = _conflicting_tasks()
    with pytest.raises(ValueError, match="needs schedule `joint`"):
        fit(tasks, TrainConfig(weighting="pcgrad", schedule="round_robin"))
    with pytest.raises(ValueError, match="soft_sharing` has none"):
        fit(tasks, TrainConfig(weighting="mgda", schedule="joint", architecture="soft_sharing"))
    # graddrop with `gradients: features` was refused (it computes no weights); it now drops
    # signs at the shared activation, as its paper does, and trains
    dropped = fit(tasks, TrainConfig(weighting="graddrop", schedule="joint", gradients="features",
                                     epochs=1))  # fmt: skip
    assert dropped.history and all(np.isfinite(v) for v in dropped.history[0].train_loss.values())


@pytest.mark.parametrize("architecture", ["hard_sharing", "mmoe", "cross_stitch"])
def test_gradnorm_measures_the_last_shared_layer_of_every_architecture(architecture):
    """The norms are taken on the last shared layer, every copy of it: the trunk's last
    matrix, every expert's (MMoE: not the last expert's alone), every tower's (cross-stitch:
    not the last 2 x 2 stitch unit), and equal autograd's norms over exactly those."""
    from mtl_core.models import MMoE

    tasks = _conflicting_tasks()
    specs = [t.spec for t in tasks.values()]
    torch.manual_seed(0)
    trunk = Trunk((6,), 8, 2, "tanh")
    model = {
        "hard_sharing": lambda: HardSharing(trunk, specs),
        "mmoe": lambda: MMoE(trunk, specs, experts=3),
        "cross_stitch": lambda: CrossStitch(trunk, specs),
    }[architecture]()
    expected = {
        "hard_sharing": lambda: [model.trunk[-2].weight],
        "mmoe": lambda: [e[-1][-2].weight for e in model.experts],
        "cross_stitch": lambda: [t[-1][-2].weight for t in model.towers],
    }[architecture]()
    assert all(p.shape == (8, 8) for p in expected), [p.shape for p in expected]
    weighting = build_weighting("gradnorm", list(tasks), {}, {})
    weighting.bind(model, 0.01)
    assert [id(p) for p in weighting._layers] == [id(p) for p in expected]
    rows = np.arange(64)
    xb = input_batch(tasks["a"].x["train"], rows)
    losses = {
        t: loss(task.spec, model(xb, t), torch.from_numpy(task.y["train"][rows]))
        for t, task in tasks.items()
    }
    reference = {
        t: float(torch.sqrt(sum(g.pow(2).sum() for g in torch.autograd.grad(
            losses[t], expected, retain_graph=True))))
        for t in tasks
    }  # fmt: skip
    weighting.combine(losses)
    for t in tasks:  # weights start at 1: the weighted norms are the norms
        assert weighting.last_norms[t] == pytest.approx(reference[t], rel=1e-4)


def test_graddrop_with_features_drops_signs_at_the_shared_activation():
    """GradDrop where its paper puts it: on the task gradients of the shared representation.
    Each coordinate's gradient is the tasks' sum where their signs agree and one task's where
    they conflict; the trunk backpropagates exactly that; each head gets its own loss's."""
    from torchjd.aggregation import GradDrop

    from mtl_core.methods import combination_problems

    assert not combination_problems(
        ["a", "b"], schedule="joint", weighting="graddrop", gradients="features"
    )
    tasks = _conflicting_tasks()
    torch.manual_seed(0)
    model = HardSharing(Trunk((6,), 8, 2, "tanh"), [t.spec for t in tasks.values()])
    rows = np.arange(64)
    xb = input_batch(tasks["a"].x["train"], rows)
    z = model.shared(xb)
    losses = {
        t: loss(task.spec, model.head(t, z, xb), torch.from_numpy(task.y["train"][rows]))
        for t, task in tasks.items()
    }
    per_task = {t: torch.autograd.grad(losses[t], z, retain_graph=True)[0] for t in tasks}
    heads = {t: torch.autograd.grad(losses[t], list(model.task_parameters(t)), retain_graph=True)
             for t in tasks}  # fmt: skip
    jacobian = torch.stack([per_task["a"].reshape(-1), per_task["b"].reshape(-1)])
    torch.manual_seed(7)
    expected = GradDrop()(jacobian)
    ga, gb = jacobian
    agree = torch.sign(ga) == torch.sign(gb)
    assert torch.allclose(expected[agree], (ga + gb)[agree])
    conflict = ~agree & (ga != 0) & (gb != 0)
    assert conflict.any()
    picked = expected[conflict]
    assert torch.all(torch.isclose(picked, ga[conflict]) | torch.isclose(picked, gb[conflict]))
    shared = list(model.shared_parameters())
    trunk = torch.autograd.grad(
        z, shared, grad_outputs=expected.reshape(z.shape), retain_graph=True
    )
    method = GradientMethod("graddrop", list(tasks), mode="features")
    model.zero_grad()
    torch.manual_seed(7)  # the same draw of GradDrop's uniform numbers
    assert method.backward(model, losses, {t: z for t in tasks}) is None
    for p, g in zip(shared, trunk, strict=True):
        assert torch.allclose(p.grad, g, atol=1e-7)
    for t in tasks:
        for p, g in zip(model.task_parameters(t), heads[t], strict=True):
            assert torch.allclose(p.grad, g, atol=1e-7)


def test_fairgrad_weights_solve_the_alpha_fair_condition():
    """FairGrad (Ban & Ji 2024, Eq. 4): the weights solve G w = w^(-1/alpha), G = J J^T."""
    from mtl_core.gradients import build_aggregator

    torch.manual_seed(0)
    jacobian = torch.randn(3, 6)
    for alpha in (0.5, 1.0, 2.0):
        weights = build_aggregator("fairgrad", 3, fairgrad_alpha=alpha).weighting(jacobian)
        gramian = jacobian @ jacobian.T
        assert torch.allclose(gramian @ weights, weights ** (-1 / alpha), rtol=1e-3)


def test_excess_mtl_moves_weight_to_the_task_whose_excess_risk_stays():
    """ExcessMTL (He et al. 2024): weights on the simplex, moved by exponentiated steps toward
    tasks whose estimated excess risk stays high; a task whose gradients vanish (it has
    learned what it can) loses weight."""
    from mtl_core.gradients import build_aggregator

    aggregator = build_aggregator("excess_mtl", 2)
    for step in range(10):
        jacobian = torch.stack([torch.ones(5), torch.ones(5) * 0.6**step])
        weights = aggregator.weighting(jacobian)
    assert float(weights.sum()) == pytest.approx(1.0)
    assert weights[0] > 0.9 > 0.1 > weights[1]
    gentle = build_aggregator("excess_mtl", 2, excess_mtl_step=0.1)
    for step in range(10):
        slow = gentle.weighting(torch.stack([torch.ones(5), torch.ones(5) * 0.6**step]))
    assert 0.5 < slow[0] < weights[0]  # a smaller step moves less


def test_imtl_scales_every_loss_to_the_same_value_and_balances_the_gradients():
    """IMTL (the paper's hybrid): IMTL-L's scales reach e^{s_t} L_t = 1 for every task, and
    the shared update has equal projections on the scaled task gradients' directions (IMTL-G);
    the logged weight is IMTL-G's times the scale."""
    from mtl_core.imtl import IMTL
    from mtl_core.train import _strategy

    tasks = _conflicting_tasks()
    specs = [t.spec for t in tasks.values()]
    torch.manual_seed(0)
    model = HardSharing(Trunk((6,), 8, 2, "tanh"), specs)
    config = TrainConfig(weighting="imtl", schedule="joint")
    method = _strategy(config, list(tasks), {}, {})
    assert isinstance(method, IMTL)
    method.bind(model, 0.05)
    rows = np.arange(64)
    xb = input_batch(tasks["a"].x["train"], rows)
    for _ in range(400):  # the model does not move: the losses stay, the scales learn
        z = model.shared(xb)
        losses = {
            t: 3.0**i
            * loss(task.spec, model.head(t, z, xb), torch.from_numpy(task.y["train"][rows]))
            for i, (t, task) in enumerate(tasks.items())
        }  # b's loss is 3 times a's units
        model.zero_grad()
        weights = method.backward(model, losses, {t: z for t in tasks})
        method.step()
    scaled = {t: method.scales()[t] * float(losses[t]) for t in tasks}
    assert scaled == pytest.approx({"a": 1.0, "b": 1.0}, rel=0.02)
    # IMTL-G on the scaled losses: the shared update projects equally on each unit gradient
    z = model.shared(xb)
    losses = {
        t: 3.0**i * loss(task.spec, model.head(t, z, xb), torch.from_numpy(task.y["train"][rows]))
        for i, (t, task) in enumerate(tasks.items())
    }
    shared = list(model.shared_parameters())
    reference = {t: [g.detach() for g in torch.autograd.grad(
        method.scales()[t] * losses[t], shared, retain_graph=True)] for t in tasks}  # fmt: skip
    model.zero_grad()
    weights = method.backward(model, losses, {t: z for t in tasks})
    grads = [torch.cat([g.reshape(-1) for g in reference[t]]) for t in tasks]
    update = torch.cat([p.grad.reshape(-1) for p in shared])
    projections = [float(update @ g / g.norm()) for g in grads]
    assert projections[0] == pytest.approx(projections[1], rel=1e-3)
    assert set(weights) == {"a", "b"} and all(w > 0 for w in weights.values())


def test_db_mtl_balances_log_loss_scales_and_gradient_magnitudes():
    """DB-MTL: the update is the running averages of the tasks' log-loss gradients, each
    rescaled to the largest norm; a task in other units (a loss 1000 times larger) moves the
    shared parameters no differently, since its log loss differs by a constant."""
    from mtl_core.dbmtl import DBMTL, DBMTLAggregator
    from mtl_core.train import _strategy

    aggregator = DBMTLAggregator(beta=0.0)  # no averaging: the step's gradients themselves
    jacobian = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.1, 0.0]])  # norms 5 and 0.1
    update = aggregator(jacobian)
    assert torch.allclose(update, torch.tensor([3.0, 4.0 + 5.0, 0.0]), atol=1e-5)
    averaged = DBMTLAggregator(beta=0.5, sigma=0.0)
    averaged(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    averaged(torch.tensor([[3.0, 0.0], [0.0, 1.0]]))
    # from a zero buffer: 0.5 m1, then m2 + 0.5 (0.5 m1 - m2)
    assert torch.allclose(averaged.buffer, torch.tensor([[1.75, 0.0], [0.0, 0.75]]))

    tasks = _conflicting_tasks()
    specs = [t.spec for t in tasks.values()]
    rows = np.arange(64)

    def shared_grads(units: float):
        torch.manual_seed(0)
        model = HardSharing(Trunk((6,), 8, 2, "tanh"), specs)
        method = _strategy(TrainConfig(weighting="db_mtl", schedule="joint"), list(tasks), {}, {})
        assert isinstance(method, DBMTL)
        method.bind(model, 0.01)
        xb = input_batch(tasks["a"].x["train"], rows)
        z = model.shared(xb)
        losses = {
            t: (units if t == "b" else 1.0)
            * loss(task.spec, model.head(t, z, xb), torch.from_numpy(task.y["train"][rows]))
            for t, task in tasks.items()
        }
        assert method.backward(model, losses, {t: z for t in tasks}) is None
        return [p.grad.clone() for p in model.shared_parameters()]

    for plain, scaled in zip(shared_grads(1.0), shared_grads(1000.0), strict=True):
        assert torch.allclose(plain, scaled, rtol=1e-4, atol=1e-7)
