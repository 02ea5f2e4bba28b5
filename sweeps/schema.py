"""The study file's schema (``study.yaml``) as pydantic models: every section, its fields,
their types, defaults and bounds, and the checks one section can make on its own. Reading a
file and the checks across sections are ``sweeps.spec``'s; the search space's are
``sweeps.space``'s (which reads these models, so they live apart from both)."""

from __future__ import annotations

import dataclasses
import os
import re
import urllib.parse
from pathlib import Path
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from mtl_core.config import ModelSettings, TrainingSettings
from mtl_core.data.settings import ARRAY_SOURCES, TextFeatures
from mtl_core.registry import READERS, method_params
from mtl_core.tasks import TaskType, allowed_metrics
from mtl_core.trunk_factory import is_factory_name
from sweeps import record
from sweeps.search_registry import PRUNERS, SAMPLERS

# metric names are PREFIX/TASK/METRIC beside valid/delta/TASK and baseline/valid/TASK/METRIC:
# a task named like the middle word makes two names one
RESERVED_TASK_NAMES = frozenset({"delta", "valid"})
TASK_NAME = re.compile(r"[a-z0-9_]+")  # matched whole (fullmatch: "$" lets a newline through)
STORE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "oracle")  # SQLAlchemy's, + drivers
TRACKING_SCHEMES = ("http", "https", "file", "databricks", *STORE_SCHEMES)
TaskTypeName = Literal[tuple(t.value for t in TaskType)]  # type: ignore[valid-type]
METRICS = {t.value: allowed_metrics(t) for t in TaskType}  # mtl_core.tasks


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)


class SplitFractions(Strict):
    valid: Annotated[float, Field(ge=0, lt=1)] = 0.15
    test: Annotated[float, Field(gt=0, lt=1)] = 0.15

    @model_validator(mode="after")
    def _leaves_training_rows(self) -> SplitFractions:
        if self.valid + self.test >= 1:
            raise ValueError("valid + test must leave rows for training (sum below 1)")
        return self


class SplitFiles(Strict):
    train: str
    valid: str | Annotated[float, Field(gt=0, lt=1)]  # a file, or a fraction of `train`
    test: str


class TaskConfig(Strict):
    # a file (.csv .tsv .txt .parquet .jsonl .npz), a folder of .npy, or builtin:NAME; may be
    # left out when `split` names a file per split
    path: str = ""
    options: dict[str, int | float] | None = None  # a builtin source's settings
    format: Literal[tuple(READERS)] | None = None  # type: ignore[valid-type]
    header: bool = True
    columns: list[str] | None = None
    missing: list[str] | None = None  # markers of a missing value besides an empty field
    # lines to skip before the header / first row; {test: 1} for one split's file only
    skip_rows: (
        Annotated[int, Field(ge=0)]
        | dict[Literal["train", "valid", "test"], Annotated[int, Field(ge=0)]]
    ) = 0

    def skip_rows_of(self, split: str | None = None) -> int:
        if isinstance(self.skip_rows, int):
            return self.skip_rows
        return self.skip_rows.get(split, 0) if split else 0

    inputs: str | list[str]
    target: str | list[str]
    label_map: dict[str | int | float | bool, str | int | float | bool] | None = None
    # rows whose target is empty (or a `missing` marker) are unlabelled for this task: they
    # train the other tasks, and this task's loss, metrics and baseline use its labelled rows
    partial_labels: bool = False
    type: TaskTypeName
    metric: str | None = None
    split: SplitFractions | SplitFiles = Field(default_factory=SplitFractions)

    @property
    def builtin(self) -> str | None:
        return self.path.removeprefix("builtin:") if self.path.startswith("builtin:") else None

    @property
    def is_array(self) -> bool:
        """Inputs and targets are named arrays (an .npz file, builtin:digits)."""
        if self.builtin is not None:
            return self.builtin in ARRAY_SOURCES
        if self.format is not None:
            return not getattr(READERS[self.format], "table", True)
        return self.path.endswith(("/", ".npy")) or Path(self.path).suffix.lower() == ".npz"

    @model_validator(mode="after")
    def _consistent(self) -> TaskConfig:
        if not self.path and not isinstance(self.split, SplitFiles):
            raise ValueError("`path` is required (unless `split` names a file per split)")
        if self.options is not None and self.builtin is None:
            raise ValueError("`options` apply to built-in sources (path: builtin:NAME) only")
        if isinstance(self.skip_rows, dict) and not isinstance(self.split, SplitFiles):
            raise ValueError("`skip_rows` per split needs split files; give one number")
        if self.partial_labels and self.is_array:
            raise ValueError("`partial_labels` applies to tables; arrays carry every label")
        if self.is_array and isinstance(self.split, SplitFiles):
            raise ValueError("array sources are split by fractions; give split: {valid, test}")
        if self.is_array and not isinstance(self.inputs, str):
            raise ValueError("an array source's `inputs` names one array")
        allowed = METRICS[self.type]
        if self.metric is None:
            self.metric = allowed[0] if self.type != "binary" else "f1"
        elif self.metric not in allowed:
            raise ValueError(
                f"metric {self.metric!r} does not fit a {self.type} task; allowed: {', '.join(allowed)}"
            )
        if self.type == "multilabel" and isinstance(self.target, str):
            raise ValueError("a multilabel task's target is a list of 0/1 columns")
        if self.type != "multilabel" and not isinstance(self.target, str):
            raise ValueError(f"a {self.type} task's target is one column")
        if (
            not self.header
            and not self.columns
            and (self.format or Path(self.path).suffix.lower())
            in ("csv", "tsv", ".csv", ".tsv", ".txt")
        ):
            raise ValueError("`header: false` needs `columns` to name the columns")
        return self

    @property
    def input_columns(self) -> list[str]:
        return [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)


def _section(name: str, base: type[BaseModel], settings: type, section: str = "") -> Any:
    """A pydantic section from ``mtl_core``'s dataclass of the same settings (types, bounds
    and defaults are written there once), with one field per hyperparameter the registry
    declares for ``section`` (``model``, ``training``)."""
    hints = get_type_hints(settings, include_extras=True)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        missing = f.default is dataclasses.MISSING
        fields[f.name] = (
            hints[f.name],
            Field(default_factory=f.default_factory) if missing else f.default,
        )
    for p in method_params(section) if section else ():
        fields[p.name] = (Annotated[p.kind, Field(**p.bounds(), description=p.help)], p.default)
    return create_model(name, __base__=base, __module__=__name__, **fields)


# How one input column becomes features: text (bow, tfidf, with its settings) or a table column
# (numeric, categorical; the text settings do not apply): ``mtl_core.data.features.TextFeatures``
TextFeatureConfig = _section("TextFeatureConfig", Strict, TextFeatures)


class _ModelConfig(Strict):
    """The ``model`` section. ``trunk`` may name a factory of the user's own trunk as a
    mapping, ``{factory: "package.module:function", OPTION: VALUE, ...}``: kept as
    ``trunk`` (the name) and ``trunk_options`` (the rest), as ``mtl_core`` takes them."""

    @model_validator(mode="before")
    @classmethod
    def _factory_mapping(cls, values: Any) -> Any:
        if not isinstance(values, dict) or not isinstance(values.get("trunk"), dict):
            return values
        given = dict(values["trunk"])
        if "factory" not in given:
            raise ValueError(
                "trunk: a mapping names the user's trunk as `factory: package.module:function` "
                "(its other keys are the factory's options); or use auto, mlp, conv"
            )
        if "trunk_options" in values:
            raise ValueError("trunk: give the factory's options in the trunk mapping only")
        factory = given.pop("factory")
        if not is_factory_name(factory):
            raise ValueError(f"trunk.factory: {factory!r} is not 'package.module:function'")
        for key, value in given.items():
            if not (isinstance(key, str) and key.isidentifier()):
                raise ValueError(f"trunk: option {key!r} is not a keyword argument's name")
            if not isinstance(value, str | int | float | bool):
                raise ValueError(f"trunk.{key}: an option is a number, a string or a boolean")
        return {**values, "trunk": factory, "trunk_options": given}

    @model_validator(mode="after")
    def _options_with_a_factory_only(self) -> Any:
        """A searched ``model.trunk`` that draws auto, mlp or conv trains without the
        factory's options: they are neither logged nor keyed for it."""
        if not is_factory_name(getattr(self, "trunk", None)):
            self.trunk_options = {}
        return self


ModelConfig = _section("ModelConfig", _ModelConfig, ModelSettings, "model")


class EarlyStopping(Strict):
    """Stop once the validation score that selects the epoch has not improved by more than
    ``min_delta`` percentage points for ``patience`` epochs. The score is a relative change in
    %: a single-task model's primary metric against its first epoch, a multi-task model's
    validation Δm against its baselines (see ``mtl_core.train``)."""

    patience: Annotated[int, Field(ge=1, le=10000)]
    min_delta: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0


class _TrainingConfig(Strict):
    """The ``training`` section: ``mtl_core.config.TrainingSettings`` and the registry's
    hyperparameters, plus what belongs to the study (seeds, early stopping)."""

    seeds: Annotated[int, Field(ge=1, le=100)] = 1
    early_stopping: EarlyStopping | None = None  # off unless set

    def train_values(self) -> dict[str, Any]:
        """These settings as ``mtl_core.train.TrainConfig`` takes them (seeds aside)."""
        values = self.model_dump(exclude={"seeds", "early_stopping"})
        stop = self.early_stopping
        values["patience"] = stop.patience if stop else 0
        values["min_delta"] = stop.min_delta if stop else 0.0
        return values


TrainingConfig = _section("TrainingConfig", _TrainingConfig, TrainingSettings, "training")


class BaselinesConfig(Strict):
    mode: Literal["matched", "tuned"] = "matched"
    trials: Annotated[int, Field(ge=1, le=10000)] = 10


class RangeParam(Strict):
    low: float
    high: float
    log: bool = False
    step: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> RangeParam:
        if self.low > self.high:
            raise ValueError(f"inverted range: low ({self.low:g}) is above high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("`step` and `log: true` cannot be combined")
        if self.step is not None and self.step <= 0:
            raise ValueError("`step` must be positive")
        return self


class ChoicesParam(Strict):
    choices: Annotated[list[Any], Field(min_length=1)]


class SubsetRule(Strict):
    min_size: Annotated[int, Field(ge=1)] = 2
    max_size: Annotated[int, Field(ge=1)] | None = None
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


class SubsetsParam(Strict):
    subsets: SubsetRule


class ConfirmConfig(Strict):
    """Once the search has its trials, the ``top`` best configurations by validation are
    trained again with ``seeds`` fresh seeds (their baselines too, paired by seed)."""

    top: Annotated[int, Field(ge=0, le=100)] = 1  # 0: no confirmation
    seeds: Annotated[int, Field(ge=2, le=100)] = 3


class SearchConfig(Strict):
    n_trials: Annotated[int, Field(ge=1)] = 20
    timeout: Annotated[float, Field(gt=0)] | None = None
    sampler: Literal[tuple(SAMPLERS)] = "tpe"  # type: ignore[valid-type]
    pruner: Literal[tuple(PRUNERS)] = "median"  # type: ignore[valid-type]
    objective: Literal["delta_m", "per_task"] = "delta_m"
    space: dict[str, RangeParam | ChoicesParam | SubsetsParam] = Field(default_factory=dict)
    # a worker that sends no heartbeat for 2 x heartbeat_s seconds is taken for dead: its
    # trial is failed, its MLflow runs are closed, and the trial is retried (at most retries)
    heartbeat_s: Annotated[int, Field(ge=1, le=3600)] = 20
    retries: Annotated[int, Field(ge=0, le=100)] = 2
    # how long a call to an unreachable store (MLflow tracking, Optuna database) is retried
    # with backoff before the sweep stops with a message; completed trials keep their record
    store_retry_s: Annotated[float, Field(ge=0, le=86400)] = 120
    # epochs before the pruner may act (default: about a third of training.epochs)
    pruner_warmup: Annotated[int, Field(ge=0, le=10000)] | None = None
    # re-train the best configurations with fresh seeds; null (or top: 0) turns it off
    confirm: ConfirmConfig | None = Field(default_factory=ConfirmConfig)
    # without confirmation: log the models of the best K trials by validation (sweeps.models)
    log_models: Annotated[int, Field(ge=0, le=1000)] = 1
    # a trial drawing the configuration of a finished trial takes its result instead of
    # training again (sweeps.reuse); false trains every trial (e.g. to see a GPU's
    # nondeterminism between identical runs)
    reuse: bool = True

    @property
    def confirms(self) -> bool:
        return self.confirm is not None and self.confirm.top > 0

    @property
    def multi_objective(self) -> bool:
        return self.objective == "per_task"

    @property
    def effective_pruner(self) -> str:
        """Optuna cannot prune multi-objective trials: per_task runs unpruned."""
        return "none" if self.multi_objective else self.pruner


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _expand_uri(template: str) -> str:
    """``${VAR}`` and ``$VAR`` from the environment; a value in the user-and-password part
    (between ``://`` and the ``@`` that ends the template's authority) is percent-encoded
    whole, as raw text (``%`` included), so the driver receives it exactly as set."""
    if "${" in _VARIABLE.sub("", template):
        raise ValueError("holds a ${...} this reads no variable from (only ${NAME} and $NAME)")
    start = template.find("://")
    userinfo_end = -1
    if start != -1:
        authority_end = len(template)
        for stop in "/?#":
            found = template.find(stop, start + 3)
            if found != -1:
                authority_end = min(authority_end, found)
        userinfo_end = template.rfind("@", start + 3, authority_end)
    parts, last = [], 0
    for match in _VARIABLE.finditer(template):
        name = match.group(1) or match.group(2)
        value = os.environ.get(name)
        if value is None:
            raise ValueError(f"environment variable {name} is not set")
        if start < match.start() < userinfo_end:
            value = urllib.parse.quote(value, safe="")
        parts += [template[last : match.start()], value]
        last = match.end()
    return "".join(parts) + template[last:]


class StudySpec(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0  # what numpy and scikit-learn take
    workdir: str = ".sweeps"
    tracking_uri: str | None = None
    storage: str | None = None
    tasks: Annotated[dict[str, TaskConfig], Field(min_length=1)]
    features: dict[str, TextFeatureConfig] = Field(default_factory=dict)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    baselines: BaselinesConfig = Field(default_factory=BaselinesConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)

    # set by load_spec: where the file lives (relative paths are relative to it)
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("tracking_uri", "storage")
    @classmethod
    def _expand_environment(cls, value: str | None, info: ValidationInfo) -> str | None:
        """``${VAR}`` in a store URI comes from the environment (keeps passwords out of files).
        A value that lands in the URI's user or password is percent-encoded whole, so a password
        holding ``@ / : ? # %`` connects instead of being cut apart (and half printed) by the
        parser."""
        if value is None:
            return None
        expanded = _expand_uri(value)
        if info.field_name == "tracking_uri" and (
            expanded == "databricks" or expanded.startswith(("file:", "/", "./", "../"))
        ):
            return expanded  # MLflow's own forms without "://"
        if "://" not in expanded:
            raise ValueError(
                "not a URI: write scheme://..., e.g. postgresql://user@host:5432/db,"
                " sqlite:///path.db or http://host:5000"
            )
        scheme = expanded.split("://", 1)[0].lower()
        family = scheme.split("+", 1)[0]  # postgresql+psycopg: postgresql
        allowed = TRACKING_SCHEMES if info.field_name == "tracking_uri" else STORE_SCHEMES
        if family not in allowed:
            raise ValueError(
                f"scheme {scheme!r} is not supported here; use one of {', '.join(allowed)}"
            )
        if family in STORE_SCHEMES:
            # a database URL: read it as SQLAlchemy will, now, not after a store was made
            from sqlalchemy.engine.url import make_url  # only for database URLs (0.25 s)

            try:
                make_url(expanded).port  # noqa: B018 - reading the port checks it
            except Exception:  # noqa: BLE001 - its text may hold a piece of the password
                raise ValueError(
                    "not a database URL that can be read (scheme://user:password@host:port/"
                    "name; a user or password holding @ / : must be percent-encoded, e.g."
                    " urllib.parse.quote(password, safe=''), or given as ${VAR})"
                ) from None
        return expanded

    @field_validator("name")
    @classmethod
    def _study_name(cls, name: str) -> str:
        """The name is an Optuna study, an MLflow experiment and a tag value in filters."""
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise ValueError("holds a control character (a newline, a tab); use printable text")
        if name != name.strip():
            raise ValueError(f"{name!r} starts or ends with a space")
        if "\\" in name:
            raise ValueError("holds a backslash, which MLflow's run filters read as an escape")
        if "'" in name and '"' in name:
            raise ValueError("holds both ' and \"; MLflow's run filters can quote one, not both")
        return name

    @field_validator("tasks", mode="before")
    @classmethod
    def _task_names(cls, tasks: Any) -> Any:
        for name in tasks if isinstance(tasks, dict) else ():
            if not TASK_NAME.fullmatch(str(name)):
                raise ValueError(f"task name {name!r} must match [a-z0-9_]+")
            if str(name) in RESERVED_TASK_NAMES:
                raise ValueError(
                    f"task name {name!r} is a word of the record's metric names (a task "
                    f"{name!r} scored by accuracy would write valid/{name}/accuracy, which is "
                    "also valid/delta/TASK or baseline/valid/TASK of a task named accuracy); "
                    "rename it"
                )
        names = set(map(str, tasks)) if isinstance(tasks, dict) else set()
        for name in sorted(names):
            for suffix in (record.STD, record.CI95, record.SIGNIFICANT):
                if name.endswith(suffix) and name.removesuffix(suffix) in names:
                    other = name.removesuffix(suffix)
                    raise ValueError(
                        f"task names {other!r} and {name!r} collide: over seeds, {other}'s"
                        f" metrics end in {suffix} (delta/{other}{suffix} would be both); rename one"
                    )
        return tasks

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    @property
    def task_names(self) -> list[str]:
        return sorted(self.tasks)

    @property
    def pruner_warmup(self) -> int:
        """Epochs before any pruning: ``search.pruner_warmup``, else about a third of the
        epochs (at least one)."""
        if self.search.pruner_warmup is not None:
            return self.search.pruner_warmup
        return max(1, round(self.training.epochs / 3))

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    @property
    def workdir_path(self) -> Path:
        return self.resolve(self.workdir)

    @property
    def tracking(self) -> str:
        if self.tracking_uri:
            return self._anchored(self.tracking_uri)
        return f"sqlite:///{self.workdir_path / 'mlflow.db'}"

    @property
    def optuna_storage(self) -> str:
        if self.storage:
            return self._anchored(self.storage)
        return f"sqlite:///{self.workdir_path / 'optuna.db'}"

    def _anchored(self, uri: str) -> str:
        """A ``sqlite:///relative.db`` URI with its file beside the study file, as every other
        path in it is (SQLite alone would open it in whatever folder the command ran in)."""
        if not uri.lower().startswith("sqlite:///") or uri.lower().startswith("sqlite:////"):
            return uri
        rest = uri[len("sqlite:///") :]
        file, sep, query = rest.partition("?")
        if not file or file == ":memory:" or file.startswith("file:"):
            return uri
        return f"sqlite:///{self.resolve(file)}{sep}{query}"

    @property
    def embedded(self) -> bool:
        """True when the tracking store is the default local SQLite file."""
        return self.tracking_uri is None
