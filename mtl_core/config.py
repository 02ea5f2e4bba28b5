"""The configuration of one training run, defined once: plain dataclasses whose fields carry
their constraints (``annotated_types``: ``Ge``, ``Gt``, ``Le``, ``Lt``; a ``Literal`` for a
closed set of names). ``sweeps`` builds the study file's ``model`` and ``training`` sections
from these fields, so a default, a bound or a name list is written here and nowhere else; a
method's own hyperparameters come from its registry entry (``mtl_core.registry``).

``TrainConfig`` is what ``fit`` takes: ``ModelSettings`` + ``TrainingSettings`` + the run's
seed and early stopping + one field per registry hyperparameter. Variants (another seed, the
single-task counterpart) are made with ``dataclasses.replace``. A dataclass does not check its
values; ``fit`` checks what it must, the study file checks all of them before anything runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le, Lt, Predicate

from mtl_core.methods import SINGLE_TASK_TRAINING, single_task_model
from mtl_core.registry import ARCHITECTURES, GRADIENTS, SCHEDULES, TRUNKS, WEIGHTINGS, method_params
from mtl_core.trunk_factory import is_factory_name

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine", "step")
SELECT = ("best_epoch", "last_epoch")
ArchitectureName = Literal[tuple(ARCHITECTURES)]  # type: ignore[valid-type]
TrunkName = Literal[tuple(TRUNKS)]  # type: ignore[valid-type]
FactoryName = Annotated[str, Predicate(is_factory_name)]
ScheduleName = Literal[tuple(SCHEDULES)]  # type: ignore[valid-type]
WeightingName = Literal[tuple(WEIGHTINGS)]  # type: ignore[valid-type]
GradientsName = Literal[tuple(GRADIENTS)]  # type: ignore[valid-type]


@dataclass
class ModelSettings:
    """The network (the study file's ``model`` section)."""

    architecture: ArchitectureName = "hard_sharing"
    # auto (conv for image rows, mlp otherwise) | mlp | conv | "package.module:function", a
    # factory of the user's own trunk (mtl_core.trunk_factory), called with `trunk_options`
    trunk: TrunkName | FactoryName = "auto"
    trunk_options: dict[str, str | int | float | bool] = field(default_factory=dict)
    hidden_size: Annotated[int, Ge(1), Le(65536)] = 200
    depth: Annotated[int, Ge(1), Le(16)] = 1  # shared layers (conv: convolution blocks)
    activation: Literal["sigmoid", "relu", "tanh", "gelu"] = "sigmoid"
    dropout: Annotated[float, Ge(0), Lt(1)] = 0.0
    # task towers: hidden layers of each task's own head (0: a linear head), and their width
    # (0: hidden_size); the heads are task parameters, the single-task baselines have them too
    head_layers: Annotated[int, Ge(0), Le(16)] = 0
    head_hidden: Annotated[int, Ge(0), Le(65536)] = 0


@dataclass
class TrainingSettings:
    """How it trains (the study file's ``training`` section, but for ``seeds`` and
    ``early_stopping``, which are the study's)."""

    epochs: Annotated[int, Ge(1), Le(10000)] = 6  # per task for `sequential`
    batch_size: Annotated[int, Ge(1)] = 64
    optimizer: Literal[OPTIMIZERS] = "adam"  # sgd: momentum 0.9
    lr: Annotated[float, Gt(0), Le(10)] = 0.001
    weight_decay: Annotated[float, Ge(0)] = 0.0
    schedule: ScheduleName = "round_robin"
    optimizer_per_task: bool = False  # one optimiser per task (graph-style alternate training)
    weighting: WeightingName = "equal"  # a loss weighting or a gradient method
    weights: dict[str, Annotated[float, Ge(0)]] = field(default_factory=dict)  # `static`'s
    gradients: GradientsName = "parameters"  # gradient methods: parameters (exact) | features
    distill: Annotated[float, Ge(0), Le(1)] = 0.0  # weight of the teachers' soft targets
    distill_temperature: Annotated[float, Gt(0), Le(100)] = 2.0
    device: Literal["auto", "cpu", "cuda"] = "auto"  # fit also takes "cuda:N"
    affinity_every: Annotated[int, Ge(0), Le(100_000)] = 0  # inter-task affinity (0: off)
    diagnostics_every: Annotated[int, Ge(0), Le(100_000)] = 0  # gradient diagnostics (0: off)
    select: Literal[SELECT] = "best_epoch"  # which epoch's model is scored
    # the learning rate per epoch (mtl_core.lr_schedule): constant | cosine (to near 0 over
    # the epochs) | step (times lr_gamma every lr_step_every epochs), after a linear warm-up
    lr_schedule: Literal[LR_SCHEDULES] = "constant"
    lr_warmup_epochs: Annotated[int, Ge(0), Le(10000)] = 0
    lr_step_every: Annotated[int, Ge(1), Le(10000)] = 10
    lr_gamma: Annotated[float, Gt(0), Le(1)] = 0.1
    grad_clip: Annotated[float, Ge(0)] = 0.0  # the gradients' total norm is clipped to it (0: off)
    # balanced: each class of a classification task weighs n / (k n_c) in its loss
    # (scikit-learn's compute_class_weight), from its training labels; none: every row alike
    class_weights: Literal["none", "balanced"] = "none"


@dataclass
class _Run(ModelSettings, TrainingSettings):
    seed: int = 0
    patience: int = 0  # early stopping: epochs without improvement before stopping (0: off)
    min_delta: float = 0.0  # early stopping: the least improvement that counts

    def method_settings(self) -> dict[str, object]:
        """Every hyperparameter the registry declares, by its study name."""
        return {
            p.name: getattr(self, p.name)
            for p in (*method_params("model"), *method_params("training"))
        }


# the plain values of one run (no Optuna or YAML inside): the settings above, and one field per
# hyperparameter that ``mtl_core.registry`` declares (experts, sharing_penalty, temperature,
# gradnorm_alpha, dwa_temperature, ...), with the registry's default
TrainConfig = dataclasses.make_dataclass(
    "TrainConfig",
    [
        (p.name, p.kind, field(default=p.default))
        for p in (*method_params("model"), *method_params("training"))
    ],
    bases=(_Run,),
    namespace={
        "__doc__": "Everything that fixes one training run (plain values).",
        "__module__": __name__,
    },
)


def single_task_config(config: _Run) -> _Run:
    """The single-task counterpart of a multi-task configuration: the same trunk, width,
    depth and optimiser; no schedule, weighting or distillation. Soft sharing and cross-stitch
    with one task are one tower, i.e. hard sharing, and train as such."""
    return dataclasses.replace(
        config,
        **SINGLE_TASK_TRAINING,
        **single_task_model({"architecture": config.architecture}),
    )
