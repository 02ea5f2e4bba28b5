"""Every method a study can name: one table per extension point (architecture, trunk,
schedule, loss weighting, gradient method, gradients mode). Torch-free: validation, ``sweeps
methods`` and ``--help`` read it without loading torch; an entry's code is imported on use.

An entry declares its name, a one-line description, where its code lives (``"module:name"``),
its rules (what it needs, what it cannot combine with: ``mtl_core.methods`` reads them) and its
typed hyperparameters (``Param``). A hyperparameter is a setting of its own in the study file
(``training.NAME``, or ``model.NAME`` for an architecture's), searchable like any other, with
its bounds checked before anything trains. Adding a method is its file, its entry here and its
test; the spec's allowed values, ``sweeps methods``, ``validate``'s combination rules and the
README's methods table follow from the entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    """A typed hyperparameter: ``int`` or ``float`` by its default, with optional bounds."""

    name: str  # the setting: training.NAME (model.NAME for an architecture's)
    default: int | float
    help: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    arg: str = ""  # the keyword its class takes, when it differs from ``name``

    @property
    def kind(self) -> type:
        return type(self.default)

    @property
    def keyword(self) -> str:
        return self.arg or self.name

    def bounds(self) -> dict[str, float]:
        """pydantic's ``Field`` constraints."""
        return {
            k: v for k, v in (("ge", self.ge), ("gt", self.gt), ("le", self.le)) if v is not None
        }


def _load(target: str) -> Any:
    """The attribute a ``"module:attribute"`` names, imported on use."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    target: str = ""  # "module:attribute", imported by ``load``; empty: no code of its own
    params: tuple[Param, ...] = ()

    def load(self) -> Any:
        if not self.target:
            raise ValueError(f"{self.name!r} has no code of its own to load")
        return _load(self.target)

    def arguments(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The keywords for this entry's class from a configuration's settings (defaults for
        those not given)."""
        return {p.keyword: p.kind(values.get(p.name, p.default)) for p in self.params}


@dataclass(frozen=True)
class Architecture(Entry):
    single_task_as: str = ""  # what it is with one task (soft sharing with one tower: hard)
    shared_parameters: bool = True  # False: nothing for gradient methods to act on


@dataclass(frozen=True)
class Schedule(Entry):
    every_task_per_step: bool = False  # every step holds a batch of every task
    epochs_per_task: bool = False  # the loop runs `epochs` per task (sequential)


@dataclass(frozen=True)
class Strategy(Entry):
    """A loss weighting or a gradient method (``training.weighting``)."""

    combines: str = ""  # "gradients" / "losses": combines every task's at once in each step
    shared_parameters: bool = False  # acts on the architecture's shared parameters
    weights_from_features: bool = False  # `gradients: features` applies (weights from a Gramian)
    # `gradients: features` aggregates the task gradients of the shared representation itself
    # (GradDrop, where its paper puts it), then backpropagates the result through the trunk
    aggregates_features: bool = False
    needs_weights: bool = False  # a weight for every task (training.weights)
    seeded: bool = False  # takes the run's seed
    n_tasks: bool = False  # the aggregator takes the number of tasks
    gradient_method: bool = False
    # "module:Class": the GradientMethod subclass that runs it (imtl: loss scales of its own
    # around the aggregator); empty: mtl_core.gradients.GradientMethod
    strategy: str = ""

    def load_strategy(self) -> Any:
        """The class that runs a gradient method (``strategy``, or the common one)."""
        return _load(self.strategy or "mtl_core.gradients:GradientMethod")


@dataclass(frozen=True)
class Reader(Entry):
    """A file format (``tasks.NAME.format``, or told by the file's suffix)."""

    suffixes: tuple[str, ...] = ()  # the suffixes that name it when `format` is not given
    table: bool = True  # a table of columns (False: named arrays)


class Registry(Mapping[str, Entry]):
    """One extension point: name -> entry, in the order a user reads them."""

    def __init__(self, kind: str, setting: str, entries: Sequence[Entry]) -> None:
        self.kind, self.setting = kind, setting
        self._entries = {e.name: e for e in entries}
        if len(self._entries) != len(entries):
            raise ValueError(f"{kind}: two entries share a name")

    def __getitem__(self, name: str) -> Entry:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, name: str) -> Entry:
        """The entry, or ValueError naming what is available."""
        if name not in self._entries:
            raise ValueError(f"{self.kind} {name!r}: use one of {', '.join(self._entries)}")
        return self._entries[name]

    def params(self) -> list[Param]:
        """Every hyperparameter of the point's entries, once each."""
        seen: dict[str, Param] = {}
        for entry in self._entries.values():
            for p in entry.params:
                seen.setdefault(p.name, p)
        return list(seen.values())


_EXPERTS = Param("experts", 4, "mmoe/dselect_k: number of shared experts", ge=1, le=64)
_SHARED_EXPERTS = Param("shared_experts", 2, "cgc/ple: shared experts per level", ge=1, le=64)
_TASK_EXPERTS = Param(
    "task_experts", 1, "cgc/ple: experts of each task's own per level", ge=1, le=64
)

ARCHITECTURES = Registry(
    "architecture",
    "model.architecture",
    [
        Architecture(
            "hard_sharing",
            "one shared trunk, one head per task (Caruana 1997)",
            "mtl_core.models.hard_sharing:HardSharing",
        ),
        Architecture(
            "soft_sharing",
            "one tower per task, tied by an L2 penalty on their distance (model.sharing_penalty)",
            "mtl_core.models.soft_sharing:SoftSharing",
            (
                Param(
                    "sharing_penalty",
                    0.01,
                    "weight of the L2 distance between towers",
                    ge=0,
                    le=1e6,
                ),
            ),
            single_task_as="hard_sharing",
            shared_parameters=False,
        ),
        Architecture(
            "cross_stitch",
            "one tower per task, mixed after every layer by learned cross-stitch units "
            "(Misra et al. 2016)",
            "mtl_core.models.cross_stitch:CrossStitch",
            single_task_as="hard_sharing",
        ),
        Architecture(
            "mmoe",
            "shared experts with one softmax gate per task (Ma et al. 2018; model.experts)",
            "mtl_core.models.mmoe:MMoE",
            (_EXPERTS,),
        ),
        Architecture(
            "dselect_k",
            "shared experts; each task's gate picks at most k by a smooth binary code "
            "(Hazimeh et al. 2021; model.dselect_k)",
            "mtl_core.models.dselect_k:DSelectK",
            (
                _EXPERTS,
                Param(
                    "dselect_k",
                    2,
                    "DSelect-k: experts each task's gate selects",
                    ge=1,
                    le=64,
                    arg="k",
                ),
                Param(
                    "dselect_gamma",
                    1.0,
                    "DSelect-k: width of the smooth-step's band around 0",
                    gt=0,
                    le=100,
                    arg="gamma",
                ),
            ),
        ),
        Architecture(
            "mtan",
            "a shared network read by each task through soft-attention masks of its own at "
            "every block (Liu et al. 2019; conv or MLP trunk)",
            "mtl_core.models.mtan:MTAN",
        ),
        Architecture(
            "cgc",
            "shared and task-specific experts, one gate per task (Tang et al. 2020; "
            "model.shared_experts, model.task_experts)",
            "mtl_core.models.ple:CGC",
            (_SHARED_EXPERTS, _TASK_EXPERTS),
        ),
        Architecture(
            "ple",
            "CGC in levels, a shared gate between them (Tang et al. 2020; model.ple_levels)",
            "mtl_core.models.ple:PLE",
            (
                _SHARED_EXPERTS,
                _TASK_EXPERTS,
                Param("ple_levels", 2, "PLE's levels of experts", ge=1, le=8, arg="levels"),
            ),
        ),
    ],
)
TRUNKS = Registry(
    "trunk",
    "model.trunk",
    [
        Entry("auto", "conv for image rows (H×W or H×W×C arrays), mlp otherwise"),
        Entry(
            "mlp", "fully connected layers; the first reads sparse bag-of-words rows as they are"
        ),
        Entry("conv", "3×3 convolutions with max-pooling, then one fully connected layer"),
    ],
)
SCHEDULES = Registry(
    "schedule",
    "training.schedule",
    [
        Schedule(
            "joint",
            "every step trains one batch of every task (zipped batches, summed loss)",
            "mtl_core.schedules:joint",
            every_task_per_step=True,
        ),
        Schedule("round_robin", "one task per step, in turn", "mtl_core.schedules:round_robin"),
        Schedule(
            "alternate",
            "one task per step, drawn uniformly at random",
            "mtl_core.schedules:alternate",
        ),
        Schedule(
            "proportional",
            "one task per step, drawn in proportion to its training rows",
            "mtl_core.schedules:proportional",
        ),
        Schedule(
            "temperature",
            "one task per step, drawn in proportion to rows^(1/T) (training.temperature)",
            "mtl_core.schedules:sampled",
            (Param("temperature", 2.0, "the temperature schedule's T", gt=0, le=1000),),
        ),
        Schedule(
            "sequential",
            "all epochs of the first task, then all of the next (shows forgetting)",
            "mtl_core.schedules:sequential",
            epochs_per_task=True,
        ),
    ],
)
LOSS_WEIGHTINGS = Registry(
    "weighting",
    "training.weighting",
    [
        Strategy("equal", "every task's loss weighs 1", "mtl_core.weighting.loss_weighting:Equal"),
        Strategy(
            "static",
            "fixed weights from training.weights",
            "mtl_core.weighting.loss_weighting:Static",
            needs_weights=True,
        ),
        Strategy(
            "inverse_size",
            "weights proportional to 1 / training rows",
            "mtl_core.weighting.loss_weighting:InverseSize",
        ),
        Strategy(
            "inverse_metric",
            "weights proportional to 1 / the task's validation metric, updated each epoch",
            "mtl_core.weighting.inverse_metric:InverseMetric",
        ),
        Strategy(
            "uncertainty",
            "learned homoscedastic uncertainty per task (Kendall et al. 2018; "
            "training.uncertainty_init, training.uncertainty_lr)",
            "mtl_core.weighting.uncertainty:Uncertainty",
            (
                Param(
                    "uncertainty_init",
                    0.0,
                    "each task's log-variance s_t at the start (0: weights start at 1; "
                    "LibMTL starts at -0.5)",
                    ge=-10,
                    le=10,
                    arg="init",
                ),
                Param(
                    "uncertainty_lr",
                    0.0,
                    "the log-variances' own Adam rate (0: max(training.lr, 0.01); LibMTL "
                    "uses the model's rate)",
                    ge=0,
                    le=10,
                    arg="lr",
                ),
            ),
        ),
        Strategy(
            "dwa",
            "dynamic weight average of loss descent rates (Liu et al. 2019; "
            "training.dwa_temperature)",
            "mtl_core.weighting.dwa:DWA",
            (
                Param(
                    "dwa_temperature",
                    2.0,
                    "DWA's softmax temperature: larger is closer to equal weights",
                    gt=0,
                    le=100,
                    arg="temperature",
                ),
            ),
        ),
        Strategy(
            "gradnorm",
            "learned weights that balance the tasks' gradient norms (Chen et al. 2018; "
            "training.gradnorm_alpha)",
            "mtl_core.weighting.gradnorm:GradNorm",
            (
                Param(
                    "gradnorm_alpha",
                    1.5,
                    "GradNorm's asymmetry: how strongly slow tasks are pushed",
                    ge=0,
                    le=10,
                    arg="alpha",
                ),
            ),
            combines="gradients",
            shared_parameters=True,
        ),
        Strategy(
            "rlw",
            "random loss weights drawn each step (Lin et al. 2021)",
            "mtl_core.weighting.rlw:RLW",
            seeded=True,
        ),
        Strategy(
            "famo",
            "learned logits that even out the rate at which the task losses fall "
            "(Liu et al. 2023; training.famo_lr, training.famo_decay)",
            "mtl_core.weighting.famo:FAMO",
            (
                Param(
                    "famo_lr", 0.025, "FAMO's Adam rate for its task logits", gt=0, le=10, arg="lr"
                ),
                Param(
                    "famo_decay",
                    0.01,
                    "FAMO's weight decay on its task logits",
                    ge=0,
                    le=10,
                    arg="decay",
                ),
            ),
            combines="losses",
        ),
        Strategy(
            "gls",
            "geometric mean of the task losses: each weighted by the inverse of its own loss "
            "(Chennupati et al. 2019)",
            "mtl_core.weighting.gls:GLS",
            combines="losses",
        ),
        Strategy(
            "stch",
            "smooth Tchebycheff scalarisation of log losses against a warm-up nadir "
            "(Lin et al. 2024; training.stch_mu, training.stch_warmup)",
            "mtl_core.weighting.stch:STCH",
            (
                Param(
                    "stch_mu",
                    1.0,
                    "STCH's smoothing: small is close to the worst task",
                    gt=0,
                    le=100,
                    arg="mu",
                ),
                Param(
                    "stch_warmup",
                    1,
                    "epochs of summed log losses before STCH",
                    ge=1,
                    le=10000,
                    arg="warmup",
                ),
            ),
            combines="losses",
        ),
    ],
)


def _gradient_method(name: str, description: str, aggregator: str, **rules: Any) -> Strategy:
    rules.setdefault("weights_from_features", True)
    return Strategy(
        name,
        description,
        f"torchjd.aggregation:{aggregator}",
        combines="gradients",
        shared_parameters=True,
        gradient_method=True,
        **rules,
    )


GRADIENT_METHODS = Registry(
    "gradient method",
    "training.weighting",
    [
        _gradient_method(
            "pcgrad",
            "projects away the conflicting part of task gradients (Yu et al. 2020)",
            "PCGrad",
        ),
        _gradient_method(
            "mgda",
            "minimum-norm point of the convex hull of the task gradients (Sener & Koltun 2018)",
            "MGDA",
        ),
        _gradient_method(
            "cagrad",
            "conflict-averse gradient descent (Liu et al. 2021; training.cagrad_c)",
            "CAGrad",
            params=(
                Param(
                    "cagrad_c",
                    0.5,
                    "CAGrad's radius around the mean gradient",
                    ge=0,
                    le=10,
                    arg="c",
                ),
            ),
        ),
        _gradient_method(
            "gradvac",
            "gradient vaccine: aligns task gradients to a target similarity (Wang et al. 2021)",
            "GradVac",
        ),
        _gradient_method(
            "imtl_g", "impartial MTL: equal projections on the update (Liu et al. 2021)", "IMTLG"
        ),
        _gradient_method(
            "imtl",
            "IMTL-L's learned loss scales with IMTL-G's gradient balance, the paper's hybrid "
            "(Liu et al. 2021)",
            "IMTLG",
            strategy="mtl_core.imtl:IMTL",
        ),
        Strategy(
            "db_mtl",
            "log losses; averaged task gradients rescaled to the largest norm (Lin et al. "
            "2023; training.db_mtl_beta, db_mtl_sigma)",
            "mtl_core.dbmtl:DBMTLAggregator",
            (
                Param(
                    "db_mtl_beta",
                    0.9,
                    "DB-MTL's averaging weight beta of past gradients",
                    ge=0,
                    le=0.999,
                    arg="beta",
                ),
                Param(
                    "db_mtl_sigma",
                    0.5,
                    "DB-MTL's decay: the weight at step k is beta / k^sigma",
                    ge=0,
                    le=10,
                    arg="sigma",
                ),
            ),
            combines="gradients",
            shared_parameters=True,
            gradient_method=True,
            strategy="mtl_core.dbmtl:DBMTL",
        ),
        Strategy(
            "moco",
            "MGDA-like weights from tracked task gradients, against stochastic bias "
            "(Fernando et al. 2023; training.moco_*)",
            "mtl_core.moco:MoCoAggregator",
            (
                Param(
                    "moco_beta",
                    0.5,
                    "MoCo's tracking rate of the task gradients (beta / k^beta_sigma at step k)",
                    ge=0,
                    le=1,
                    arg="beta",
                ),
                Param(
                    "moco_beta_sigma",
                    0.5,
                    "MoCo's decay of the tracking rate",
                    ge=0,
                    le=10,
                    arg="beta_sigma",
                ),
                Param(
                    "moco_gamma",
                    0.1,
                    "MoCo's step on its task weights (gamma / k^gamma_sigma at step k)",
                    gt=0,
                    le=100,
                    arg="gamma",
                ),
                Param(
                    "moco_gamma_sigma",
                    0.5,
                    "MoCo's decay of the weight step",
                    ge=0,
                    le=10,
                    arg="gamma_sigma",
                ),
                Param(
                    "moco_rho",
                    0.0,
                    "MoCo's L2 regularisation of its task weights",
                    ge=0,
                    le=100,
                    arg="rho",
                ),
            ),
            combines="gradients",
            shared_parameters=True,
            gradient_method=True,
            strategy="mtl_core.moco:MoCo",
        ),
        _gradient_method(
            "aligned_mtl",
            "aligns the principal components of the task gradients (Senushkin et al. 2023)",
            "AlignedMTL",
        ),
        _gradient_method(
            "upgrad", "unconflicting projection of gradients (Quinton & Rey 2024)", "UPGrad"
        ),
        _gradient_method(
            "graddrop",
            "drops gradient signs at random by their consistency (Chen et al. 2020; "
            "gradients: features: at the shared activation)",
            "GradDrop",
            weights_from_features=False,
            aggregates_features=True,
        ),
        _gradient_method(
            "dualproj",
            "projects the mean gradient onto the dual cone of the task gradients",
            "DualProj",
        ),
        _gradient_method(
            "fairgrad",
            "alpha-fair allocation of the update among tasks (Ban & Ji 2024; "
            "training.fairgrad_alpha)",
            "FairGrad",
            params=(
                Param(
                    "fairgrad_alpha",
                    1.0,
                    "FairGrad's alpha: 0 maximises the summed improvement, 1 is proportional "
                    "fairness, large approaches max-min",
                    ge=0,
                    le=20,
                    arg="alpha",
                ),
            ),
        ),
        _gradient_method(
            "excess_mtl",
            "weights by each task's estimated excess risk, robust to label noise (He et al. "
            "2024; training.excess_mtl_step)",
            "ExcessMTL",
            params=(
                Param(
                    "excess_mtl_step",
                    1.0,
                    "ExcessMTL's step size for its exponentiated weight update",
                    gt=0,
                    le=100,
                    arg="robust_step_size",
                ),
            ),
            # its state accumulates squared gradients per parameter: the representation's
            # Jacobian changes width with the batch, so it runs on the parameters only
            weights_from_features=False,
        ),
        _gradient_method(
            "nash_mtl",
            "Nash bargaining solution over task gradients (Navon et al. 2022)",
            "NashMTL",
            n_tasks=True,
        ),
    ],
)
WEIGHTINGS = Registry(
    "weighting", "training.weighting", [*LOSS_WEIGHTINGS.values(), *GRADIENT_METHODS.values()]
)
GRADIENTS = Registry(
    "gradients",
    "training.gradients",
    [
        Entry(
            "parameters",
            "gradient methods act on the Jacobian of the shared parameters (exact)",
        ),
        Entry(
            "features",
            "they act on the gradients with respect to the shared representation, then one "
            "backward pass through the trunk (MGDA-UB style; cheaper)",
        ),
    ],
)
READERS = Registry(
    "reader",
    "tasks.NAME.format",
    [
        Reader(
            "csv",
            "comma-separated text; quoting on, spaces after commas dropped",
            "mtl_core.data.readers:read_csv",
            suffixes=(".csv",),
        ),
        Reader(
            "tsv",
            "tab-separated text (.tsv, .txt); quoting off: review sentences hold stray quotes",
            "mtl_core.data.readers:read_tsv",
            suffixes=(".tsv", ".txt"),
        ),
        Reader(
            "parquet",
            "Apache Parquet",
            "mtl_core.data.readers:read_parquet",
            suffixes=(".parquet",),
        ),
        Reader(
            "jsonl",
            "one JSON object per line",
            "mtl_core.data.readers:read_jsonl",
            suffixes=(".jsonl",),
        ),
        Reader(
            "npz",
            "named arrays in one .npz file, read without pickle",
            "mtl_core.data.readers:read_arrays",
            suffixes=(".npz",),
            table=False,
        ),
        Reader(
            "npy",
            "a folder of .npy arrays, one per name, read without pickle",
            "mtl_core.data.readers:read_arrays",
            table=False,
        ),
    ],
)
CATALOGUE: dict[str, Registry] = {
    r.kind: r
    for r in (
        ARCHITECTURES,
        TRUNKS,
        SCHEDULES,
        LOSS_WEIGHTINGS,
        GRADIENT_METHODS,
        GRADIENTS,
        READERS,
    )
}


def method_params(section: str) -> list[Param]:
    """The hyperparameters that live in ``model`` (architectures') or ``training`` (schedules',
    weightings', gradient methods')."""
    if section == "model":
        return ARCHITECTURES.params()
    return [*SCHEDULES.params(), *WEIGHTINGS.params()]
