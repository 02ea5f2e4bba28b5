"""Time per optimiser step of every loss weighting and gradient method, as a ratio to
``equal``, at T = 2, 4 and 8 tasks (issue 8).

Set-up as in the issue: CPU, 1 thread, an MLP trunk 512 -> 256 -> 256 (ReLU), T binary heads
over the same rows, batches of 64, the joint schedule. Each figure is ``fit()``'s own loop
(forward, the method, the optimiser step) over ``--steps`` steps, median of ``--repeat``.
Two references written out here, not in the library: the LibMTL way (T separate backward
passes through the trunk, PCGrad's projections in Python) and torchjd's autogram Gramian
engine with UPGrad's weighting.

    python benchmarks/method_step_cost.py [--steps 40] [--repeat 3] [--tasks 2 4 8]
        [--methods stch dwa] [--no-references] [--architectures mmoe dselect_k mtan]

Architectures (``--architectures``) train with ``equal`` and are timed against hard sharing's
``equal`` on the same data: the cost of the architecture itself.

Targets: loss weightings within 1.2x; exact gradient methods within 3.3x at T = 4 and at
most 0.8x the LibMTL way at T = 8; ``gradients: features`` within 1.6x at T = 4.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from mtl_core import TrainConfig, fit
from mtl_core.data.arrays import tasks_from_arrays
from mtl_core.methods import GRADIENT_METHODS, LOSS_WEIGHTINGS, WEIGHTS_FROM_FEATURES
from mtl_core.models import HardSharing, Trunk
from mtl_core.tasks import loss

BATCH, WIDTH, INPUTS = 64, 256, 512


def _tasks(n_tasks: int, steps: int):
    rng = np.random.default_rng(0)
    rows = BATCH * steps
    x = rng.normal(size=(int(rows / 0.96) + 2, INPUTS)).astype(np.float32)
    targets = {
        f"t{i}": ((x @ rng.normal(size=INPUTS) > 0).astype(int), "binary") for i in range(n_tasks)
    }
    return tasks_from_arrays(x, targets, valid=0.02, test=0.02)


def _fit_step_seconds(
    tasks, weighting: str, gradients: str = "parameters", architecture: str = "hard_sharing"
) -> float:
    config = TrainConfig(
        architecture=architecture,
        hidden_size=WIDTH,
        depth=2,
        activation="relu",
        epochs=1,
        batch_size=BATCH,
        schedule="joint",
        weighting=weighting,
        weights={t: 1.0 for t in tasks},
        gradients=gradients,
        device="cpu",
    )
    result = fit(tasks, config)
    steps = -(-next(iter(tasks.values())).rows("train") // BATCH)
    return result.train_seconds / steps


def _manual_step_seconds(tasks, kind: str, steps: int) -> float:
    """The LibMTL way (``libmtl_pcgrad``) or torchjd's Gramian engine (``autogram``)."""
    torch.manual_seed(0)
    names = list(tasks)
    specs = [t.spec for t in tasks.values()]
    model = HardSharing(Trunk((INPUTS,), WIDTH, 2, "relu", 0.0, "mlp"), specs)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all = torch.from_numpy(tasks[names[0]].x["train"])
    ys = {t: torch.from_numpy(tasks[t].y["train"]) for t in names}
    shared = list(model.shared_parameters())
    engine = weighting = None
    if kind == "autogram":
        from torchjd.aggregation import UPGradWeighting
        from torchjd.autogram import Engine

        engine, weighting = Engine(model.trunk, batch_dim=None), UPGradWeighting()
    started = time.perf_counter()
    for step in range(steps):
        rows = slice(step * BATCH, (step + 1) * BATCH)
        x = x_all[rows]
        z = model.trunk(x)
        losses = torch.stack([loss(tasks[t].spec, model.heads[t](z), ys[t][rows]) for t in names])
        optimizer.zero_grad()
        if kind == "autogram":
            gramian = engine.compute_gramian(losses)
            losses.backward(weighting(gramian))
        else:
            grads = []
            for i in range(len(names)):
                g = torch.autograd.grad(losses[i], shared, retain_graph=True)
                grads.append(torch.cat([p.reshape(-1) for p in g]))
            projected = [g.clone() for g in grads]
            for i, g in enumerate(projected):
                for j in np.random.permutation(len(names)):
                    dot = g @ grads[j]
                    if j != i and dot < 0:
                        g -= dot / (grads[j] @ grads[j]) * grads[j]
            update = torch.stack(projected).sum(dim=0)
            heads = sum(losses)
            head_params = [p for t in names for p in model.heads[t].parameters()]
            for p, g in zip(head_params, torch.autograd.grad(heads, head_params), strict=True):
                p.grad = g
            offset = 0
            for p in shared:
                p.grad = update[offset : offset + p.numel()].view_as(p)
                offset += p.numel()
        optimizer.step()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tasks", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument(
        "--methods", nargs="+", default=None, help="only these (and equal); default: all"
    )
    parser.add_argument("--no-references", action="store_true", help="skip the two references")
    parser.add_argument(
        "--architectures",
        nargs="+",
        default=[],
        help="also time these architectures (with equal weighting) against hard sharing",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread")
    rows: dict[str, dict[int, float]] = {}
    for n in args.tasks:
        tasks = _tasks(n, args.steps)

        def median(fn) -> float:
            return statistics.median(fn() for _ in range(args.repeat))

        _fit_step_seconds(tasks, "equal")  # warm-up: first-call costs stay out of the figures
        cases = {name: (name, "parameters") for name in [*LOSS_WEIGHTINGS, *GRADIENT_METHODS]}
        cases |= {f"{m} (features)": (m, "features") for m in sorted(WEIGHTS_FROM_FEATURES)}
        if args.methods:
            cases = {k: v for k, v in cases.items() if v[0] in {"equal", *args.methods}}
        seconds = {
            label: median(lambda w=w, g=g, tasks=tasks: _fit_step_seconds(tasks, w, g))
            for label, (w, g) in cases.items()
        }
        for name in args.architectures:
            seconds[f"architecture {name} (equal)"] = median(
                lambda a=name, tasks=tasks: _fit_step_seconds(tasks, "equal", architecture=a)
            )
        if not args.no_references:
            seconds["LibMTL-style pcgrad (reference)"] = median(
                lambda tasks=tasks: _manual_step_seconds(tasks, "libmtl_pcgrad", args.steps)
            )
            seconds["torchjd autogram upgrad (reference)"] = median(
                lambda tasks=tasks: _manual_step_seconds(tasks, "autogram", args.steps)
            )
        for label, value in seconds.items():
            rows.setdefault(label, {})[n] = value
        print(f"T={n}: equal {seconds['equal'] * 1000:.1f} ms per step")
    header = "| method | " + " | ".join(f"T={n}" for n in args.tasks) + " |"
    print(header)
    print("|" + " --- |" * (len(args.tasks) + 1))
    for label, by_n in rows.items():
        cells = [f"{by_n[n] / rows['equal'][n]:.2f}x" for n in args.tasks]
        print(f"| {label} | " + " | ".join(cells) + " |")
    for n in args.tasks if "pcgrad" in rows and not args.no_references else ():
        libmtl = rows["LibMTL-style pcgrad (reference)"][n]
        print(f"T={n}: pcgrad / LibMTL way = {rows['pcgrad'][n] / libmtl:.2f}x")


if __name__ == "__main__":
    main()
