"""The study's MLflow record: every tag and metric name (the contract's "What lands in MLflow"
and the README's), the queries that find runs, and the one paginated search every reader uses
(``status``, the report, the pair matrix, the dashboards). ``sweeps.tracking.Tracker`` is the
only writer; every module that writes or reads a name takes it from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sweeps.masking import mask

# tags
KIND = "mtl.kind"  # one of the kinds below
STUDY = "mtl.study"
TRIAL_NUMBER = "mtl.trial_number"
TASKS = "mtl.tasks"  # sorted, comma-joined
TASK = "mtl.task"  # a baseline's task
STATE = "mtl.state"  # RUNNING | COMPLETE | PRUNED | FAIL | REUSED
REUSED = "REUSED"  # a trial whose configuration an earlier one trained: its result, no figures
REUSES = "mtl.reuses"  # on a REUSED trial's run: the number of the trial that trained it
ERROR = "mtl.error"
WORKER = "mtl.worker"  # host:pid of the process that ran it
RETRY_OF = "mtl.retry_of"  # the trial a dead worker left, retried by this one
BASELINE_KEY = "mtl.baseline_key"
BASELINE_MODE = "mtl.baseline_mode"
SEED = "mtl.seed"
TRAINED_IN_TRIAL = "mtl.trained_in_trial"  # the trial whose worker trained a baseline
CONFIRMS = "mtl.confirms"  # a confirm run: the search trial it confirms
CONFIRM_TRIAL = "mtl.confirm_trial"  # its trial number in the confirmation study
PARETO = "mtl.pareto"  # "true" on trials of a multi-objective study's front
TRANSFER_KEY = "mtl.transfer_key"
SETTINGS = "mtl.settings"  # a transfer run's settings label
ARTIFACT_ERROR = "mtl.artifact_error"
MODEL_SEED = "mtl.model_seed"  # a run with a model (artifact path `model`): its model's seed
GROUP_OF = "mtl.group"  # a group run: what its children are ("baselines")
DESCRIPTION = "mlflow.note.content"  # the run's description in the MLflow UI (markdown)
_BASELINE_RUN = "mtl.baseline_run."


def run_name(head: str, tasks: list[str] | str, model: Any = None, training: Any = None) -> str:
    """A run's name in the MLflow UI, saying what it is: "trial 7 · amazon+imdb · joint ·
    uncertainty · h128", "baseline · imdb · h128 · seed 0". Names are for people: queries
    read the tags."""
    parts = [head, tasks if isinstance(tasks, str) else "+".join(tasks)]
    if training is not None:
        parts += [training.schedule, training.weighting]
    if model is not None:
        if model.architecture != "hard_sharing":
            parts.append(model.architecture)
        parts.append(f"h{model.hidden_size}")
    return " · ".join(str(p) for p in parts)


# params
DEVICE = "device"  # what a trial, confirm or baseline run trained on: cpu, cuda:0 (not `auto`)

# the experiment's tag that opens it in the MLflow UI (3.x) as training runs, not GenAI traces
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}

# kinds of run
STUDY_RUN, TRIAL, BASELINE, CONFIRM, TRANSFER = "study", "trial", "baseline", "confirm", "transfer"
GROUP = "group"  # a run that only holds others (the study's baselines), so the trial list reads
KINDS = (STUDY_RUN, TRIAL, BASELINE, CONFIRM, TRANSFER, GROUP)

# metrics of one number per run
DELTA_M = "delta_m"  # test Δm (also as test/delta_m)
VALID_DELTA_M = "valid/delta_m"  # the objective: validation Δm of the scored epochs
VALID_DELTA_M_BY_EPOCH = "valid/delta_m_by_epoch"  # per epoch, paired with the baselines
BEST_EPOCH = "best_epoch"
TRAIN_S, BASELINE_S, TRIAL_S = "time/train_s", "time/baseline_s", "time/trial_s"
DIAGNOSTICS_S = "time/diagnostics_s"
SIGNIFICANT, STD, CI95 = "_significant", "_std", "_ci95"  # suffixes over seeds


# metrics of the study run, from `sweeps report`
SUMMARY_BASELINE_S, SUMMARY_TRIAL_S = "summary/baseline_s", "summary/trial_s"
SUMMARY_BASELINE_SHARE = "summary/baseline_share_pct"
SUMMARY_GROUPS_PREDICTED = "summary/groups_predicted"
SUMMARY_WINNER = "summary/winner_trial"  # the trial chosen on validation (confirmed if it was)
SUMMARY_VALID_DELTA_M = "summary/valid_delta_m"  # its validation Δm (with _ci95 over seeds)
SUMMARY_TEST_DELTA_M = "summary/test_delta_m"  # its test Δm, reported, never chosen on
SUMMARY_SEEDS = "summary/seeds"  # the seeds behind those two figures


def summary_trials(state: str) -> str:
    return f"summary/trials_{state.lower()}"  # how many trials ended in that state


def summary_pair(split: str, task: str, partner: str) -> str:
    return f"summary/pair/{split}/{task}/{partner}"  # the best partner's mean pair Δ


ERROR_LIMIT = 5000  # characters of an error kept in its tag


def error_tag(reason: str) -> dict[str, str]:
    """The ``mtl.error`` tag of a failed run, its secrets masked, cut to ``ERROR_LIMIT``."""
    return {ERROR: mask(reason)[:ERROR_LIMIT]}


def failure(exc: BaseException) -> dict[str, str]:
    return error_tag(f"{type(exc).__name__}: {exc}")


def time_metrics(train_s: float, baseline_s: float, trial_s: float) -> list[tuple[str, float, int]]:
    """A trial's (or confirm run's) three times, as metrics at step 0."""
    return [(TRAIN_S, train_s, 0), (BASELINE_S, baseline_s, 0), (TRIAL_S, trial_s, 0)]


def baseline_run_tag(task: str) -> str:
    """The tag of a trial run naming the baseline run of ``task`` it was compared with."""
    return f"{_BASELINE_RUN}{task}"


def baseline_runs(tags: Mapping[str, str]) -> dict[str, str]:
    """Task -> baseline run id, from a trial run's tags."""
    return {
        k.removeprefix(_BASELINE_RUN): v for k, v in tags.items() if k.startswith(_BASELINE_RUN)
    }


def valid(task: str, metric: str) -> str:
    return f"valid/{task}/{metric}"  # per epoch (step = epoch)


def test(task: str, metric: str) -> str:
    return f"test/{task}/{metric}"


def selected_valid(task: str, metric: str) -> str:
    return f"selected/valid/{task}/{metric}"  # the scored epoch's validation metric


def train_loss(task: str) -> str:
    return f"train/{task}/loss"


LR = "lr"  # per epoch: the learning rate the epoch trained at (training.lr_schedule)


def weight(task: str) -> str:
    return f"weight/{task}"


def baseline(task: str, metric: str) -> str:
    return f"baseline/{task}/{metric}"  # the baseline's test metric


def baseline_valid(task: str, metric: str) -> str:
    return f"baseline/valid/{task}/{metric}"


def delta(task: str) -> str:
    return f"delta/{task}"  # test Δ (also as test/delta/TASK)


def valid_delta(task: str) -> str:
    return f"valid/delta/{task}"  # per epoch, paired with the baseline's same epoch


def selected_valid_delta(task: str) -> str:
    return f"selected/valid/delta/{task}"  # the scored epochs' validation Δ


# a method's own per-epoch counters, named by mtl_core (EpochLog.method), logged as they are:
# nash_mtl/solver_failures and nash_mtl/steps (mtl_core.solver_watch)
METHOD_COUNTER_PREFIXES = ("nash_mtl/",)


# measurements (training.affinity_every, training.diagnostics_every)
def affinity(i: str, j: str) -> str:
    return f"affinity/{i}/{j}"  # Z(i→j) per epoch


AFFINITY_PREFIX = "affinity/"


def grad_norm(parameter: str) -> str:
    return f"grad_norm/{parameter}"


def grad_cos(i: str, j: str) -> str:
    return f"grad_cos/{i}/{j}"


def feature_spearman(task: str) -> str:
    return f"features/{task}/spearman"


def cross(task: str, head: str, metric: str, single: bool = False) -> str:
    """``task``'s test rows scored by ``head``'s head (of the single-task model of ``head``)."""
    return f"{'cross_single' if single else 'cross'}/{task}_via_{head}/{metric}"


def pair_delta(split: str, task: str) -> str:
    """The Δ of ``task`` that the pair matrix reads for ``split`` (test or valid)."""
    return delta(task) if split == "test" else selected_valid_delta(task)


def significance(metrics: Mapping[str, float]) -> dict[str, float]:
    """Task -> +1 / -1 / 0 from ``delta/TASK_significant`` metrics."""
    return {
        name.removeprefix("delta/").removesuffix(SIGNIFICANT): value
        for name, value in metrics.items()
        if name.startswith("delta/") and name.endswith(SIGNIFICANT)
    }


def baseline_metrics(metrics: Mapping[str, float], task: str) -> list[str]:
    """The metric names (f1, mse, ...) a trial run holds as ``baseline/TASK/METRIC``."""
    prefix = f"baseline/{task}/"
    return [k.removeprefix(prefix) for k in metrics if k.startswith(prefix)]


# reading runs back
def kind_of(run: Any) -> str | None:
    return run.data.tags.get(KIND)


def tasks_of(run: Any) -> list[str]:
    return [t for t in run.data.tags.get(TASKS, "").split(",") if t]


def state_of(run: Any) -> str:
    return run.data.tags.get(STATE, run.info.status)


def is_complete(run: Any) -> bool:
    return run.info.status == "FINISHED" and run.data.tags.get(STATE) == "COMPLETE"


def has_results(run: Any) -> bool:
    """A FINISHED run with figures of its own: not a pruned trial's (FINISHED too, since the
    MLflow UI marks KILLED and FAILED runs as failures; ``mtl.state`` PRUNED) nor a reused
    one's (``mtl.state`` REUSED: the trial it repeats holds the figures)."""
    return run.info.status == "FINISHED" and run.data.tags.get(STATE) in (None, "COMPLETE")


def quote(value: str) -> str:
    """A value as a quoted MLflow filter literal. MLflow's parser keeps a backslash as it is
    (``'it\\'s'`` matches the text ``it\\'s``), so a value holding ``'`` goes in double
    quotes; one holding both kinds cannot be written (the spec refuses such names)."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"{value!r} holds both quote characters: no MLflow filter can match it")


def where(
    tags: Mapping[str, str] | None = None,
    status: str | None = None,
    not_kind: str | Sequence[str] | None = None,
) -> str:
    """An MLflow filter: every tag equal to its value, the run's status, kinds left out."""
    parts = [f"tags.`{k}` = {quote(v)}" for k, v in (tags or {}).items()]
    for kind in [not_kind] if isinstance(not_kind, str) else not_kind or ():
        parts.append(f"tags.`{KIND}` != {quote(kind)}")
    if status is not None:
        parts.append(f"attributes.status = {quote(status)}")
    return " and ".join(parts)


def of_kind(kind: str, status: str | None = None, **tags: str) -> str:
    """Runs of one kind, e.g. ``of_kind(BASELINE, status="FINISHED")``; ``tags`` by their
    constant's value (``**{BASELINE_KEY: key}``)."""
    return where({KIND: kind, **tags}, status)


def study_search(spec: Any, query: str) -> list:
    """Every run of the study's experiment matching ``query``; [] before the study has a
    store or an experiment (an embedded store is never created by reading)."""
    if spec.embedded and not (spec.workdir_path / "mlflow.db").exists():
        return []
    from sweeps.sqlite_stores import mlflow_client  # (it loads mlflow: light commands skip it)

    client = mlflow_client(spec.tracking)
    experiment = client.get_experiment_by_name(spec.name)
    return search_all(client, experiment.experiment_id, query) if experiment else []


def search_all(client: Any, experiment_id: str, query: str) -> list:
    """Every run of the experiment matching ``query``, page by page."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], query, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs
