"""Gradient methods: the task gradients of the shared parameters combined by torchjd's
aggregators, not by code of our own.

Two ways to get the task gradients (``training.gradients``):

- ``parameters`` (exact): torchjd's ``mtl_backward`` computes the Jacobian of the task losses
  with respect to the shared parameters (one row per task, through batched vector-Jacobian
  products), ``jac_to_grad`` aggregates it into their ``.grad``; the heads get their own
  gradients.
- ``features`` (MGDA-UB style, Sener & Koltun 2018): the Jacobian of the task losses with
  respect to the shared *representation* (cheap: it crosses the heads only), the method's
  weights from it, then one ordinary backward pass of ``sum_t w_t L_t``. The weights are those
  of an upper bound of the exact problem; it applies to the methods that compute weights.
  Tasks of separate data sets have separate representations, so their feature gradients are
  orthogonal and the methods only balance norms; they resolve conflicts where tasks share
  their rows (several targets of one table).

Heads. With ``parameters``, each task's head gets the gradient of its own loss, unweighted;
the method's weights act on the shared parameters only. The official Nash-MTL code (and
LibMTL) backpropagates ``sum_t w_t L_t`` instead, so a head's gradient is scaled by its task's
weight. A head's parameters belong to one task, so the scale is the only difference, and Adam
(the default optimiser) divides it out of each parameter's update (up to its epsilon, and as
long as the weight drifts slowly); under ``optimizer: sgd`` a head learns ``w_t`` times faster
or slower there than here. ``gradients: features`` weights heads as the official code does
(one backward pass of the weighted sum). ``graddrop`` with ``features`` drops signs where
its paper does, on the gradients of the shared activation, and backpropagates the result.

Nash-MTL's solver is watched (``mtl_core.solver_watch``): a step whose solve failed keeps the
previous weights, counted per epoch as ``nash_mtl/solver_failures``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence

import torch

from mtl_core.methods import AGGREGATES_FEATURES, WEIGHTS_FROM_FEATURES
from mtl_core.models.sparse_input import SparseLinear
from mtl_core.registry import GRADIENT_METHODS, Strategy
from mtl_core.solver_watch import SolverWatch


def build_aggregator(name: str, n_tasks: int, **settings):
    """torchjd's aggregator for a method name (a fresh one: some keep state), with the
    hyperparameters its registry entry declares taken from ``settings`` (study names)."""
    entry = GRADIENT_METHODS.entry(name)
    arguments = entry.arguments(settings)
    if isinstance(entry, Strategy) and entry.n_tasks:
        arguments["n_tasks"] = n_tasks
    try:
        return entry.load()(**arguments)
    except ImportError as exc:
        raise ImportError(
            f"gradient method {name!r} needs torchjd's optional solvers: "
            f'pip install "torchjd[full]" ({exc})'
        ) from None


class GradientMethod:
    """``backward(model, losses, features)`` fills ``.grad`` of every parameter and returns the
    task weights it used (None where the method has none). The rest of the strategy interface
    (``mtl_core.weighting.LossWeighting``) is empty: no parameters, no hooks."""

    per_step = True
    needs_losses_after_step = False

    def bind(self, model: torch.nn.Module, lr: float) -> None:
        if self.mode == "parameters":  # torchjd vmaps the backward through the trunk
            for layer in model.modules():
                if isinstance(layer, SparseLinear):
                    layer.batched_grads = True

    def step(self) -> None: ...

    def end_epoch(self, epoch: int, train_loss, valid) -> None: ...

    def weights(self) -> dict[str, float]:
        return {}

    def epoch_metrics(self) -> dict[str, float]:
        """Nash-MTL's solver failures and steps this epoch (``mtl_core.solver_watch``)."""
        return self.watch.epoch_metrics() if self.watch is not None else {}

    def __init__(
        self, name: str, tasks: Sequence[str], mode: str = "parameters", **settings
    ) -> None:
        if mode not in ("parameters", "features"):
            raise ValueError(f"gradients {mode!r}: use parameters or features")
        if mode == "features" and name not in WEIGHTS_FROM_FEATURES | AGGREGATES_FEATURES:
            raise ValueError(f"`gradients: features` does not apply to {name!r}")
        self.name, self.tasks, self.mode = name, list(tasks), mode
        self.aggregator = build_aggregator(name, len(self.tasks), **settings)
        self.watch = SolverWatch(self.aggregator) if name == "nash_mtl" else None

    def backward(
        self,
        model: torch.nn.Module,
        losses: dict[str, torch.Tensor],
        features: dict[str, torch.Tensor],
    ) -> dict[str, float] | None:
        """``features[t]``: the shared representation task ``t``'s loss was computed from
        (tasks that share rows share the tensor)."""
        names = [t for t in self.tasks if t in losses]
        if self.mode == "features":
            return self._from_features(model, names, losses, features)
        # here, not at the top: torchjd loads only when this runs
        from torchjd.autojac import jac_to_grad, mtl_backward

        shared = [p for p in model.shared_parameters() if p.requires_grad]
        unique = list({id(z): z for z in (features[t] for t in names)}.values())
        mtl_backward(
            [losses[t] for t in names],
            features=unique,
            tasks_params=[list(model.task_parameters(t)) for t in names],
            shared_params=shared,
        )
        with _quiet_solvers():
            weights = jac_to_grad(shared, self.aggregator)
        return _as_dict(names, weights)

    def _from_features(self, model, names, losses, features) -> dict[str, float] | None:
        groups: dict[int, list[int]] = {}
        for i, t in enumerate(names):
            groups.setdefault(id(features[t]), []).append(i)
        blocks = []
        for members in groups.values():
            z = features[names[members[0]]]
            part = torch.stack([losses[names[i]] for i in members])
            eye = torch.eye(len(members), device=part.device, dtype=part.dtype)
            (grads,) = torch.autograd.grad(
                part, z, grad_outputs=eye, is_grads_batched=True, retain_graph=True
            )
            block = z.new_zeros((len(names), z.numel()))
            block[members] = grads.reshape(len(members), -1)
            blocks.append(block)
        jacobian = torch.cat(blocks, dim=1)
        if self.name in AGGREGATES_FEATURES:
            return self._aggregate_features(model, names, losses, features, groups, jacobian)
        with _quiet_solvers():
            weights = self.aggregator.weighting(jacobian).detach()
        total = sum(w * losses[t] for w, t in zip(weights, names, strict=True))
        total.backward()
        return _as_dict(names, weights)

    def _aggregate_features(self, model, names, losses, features, groups, jacobian) -> None:
        """GradDrop at the shared activation (Chen et al. 2020, Algorithm 1): the task
        gradients of the representation, one row per task, aggregated into one gradient of
        it, which the trunk backpropagates; each head gets the gradient of its own loss."""
        combined = self.aggregator(jacobian).detach()
        heads = [p for t in names for p in model.task_parameters(t) if p.requires_grad]
        torch.autograd.backward(
            sum(losses[t] for t in names), inputs=heads, retain_graph=True
        )  # the heads' own gradients, nothing else
        offset, outputs, grads = 0, [], []
        for members in groups.values():
            z = features[names[members[0]]]
            outputs.append(z)
            grads.append(combined[offset : offset + z.numel()].reshape(z.shape))
            offset += z.numel()
        shared = [p for p in model.shared_parameters() if p.requires_grad]
        torch.autograd.backward(outputs, grad_tensors=grads, inputs=shared)
        return None


@contextlib.contextmanager
def _quiet_solvers():
    """cvxpy's notes on every Nash-MTL solve (not DPP; may be inaccurate) say nothing a study
    can act on; silenced here only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(not DPP|Solution may be inaccurate).*")
        yield


def _as_dict(names: list[str], weights) -> dict[str, float] | None:
    if weights is None:
        return None
    return {t: float(w) for t, w in zip(names, weights.detach().reshape(-1).tolist(), strict=True)}
