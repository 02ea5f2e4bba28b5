"""``sweeps transfer STUDY.yaml``: train every pair of the study's tasks with one setting and
fill the pair transfer matrix on purpose.

The setting is the best complete trial's (``--settings best``, the default; its sampled
values with the task set replaced by each pair) or the file's fixed values (``--settings
fixed``, and the fallback when no trial has completed). Each pair is one MLflow run
(``mtl.kind=transfer``, child of the study run) with the trial metrics (``test/``,
``baseline/``, ``delta/``, ``delta_m``, with ``_std``/``_ci95``/``_significant`` for several
seeds). A pair already trained with the same setting (tag ``mtl.transfer_key``) is reused, and
its baselines are the study's, by key. The matrix is printed, written to
``<workdir>/transfer_matrix.csv`` and logged on the study run as ``transfer_matrix.csv``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time

import optuna
from rich.console import Console

from mtl_core.train import fit
from sweeps import record
from sweeps.baselines import Baselines
from sweeps.errors import StudyError
from sweeps.masking import mask
from sweeps.runner import open_tracker, study_params
from sweeps.schema import StudySpec
from sweeps.space import TrialConfig, fixed_config, sample
from sweeps.stable_keys import model_key, training_key
from sweeps.study_data import load_study_data
from sweeps.study_state import best_of
from sweeps.transfer_matrix import PairMatrix, pair_matrix, print_matrix
from sweeps.trial import _summarise, seeds_of


def run_transfer(spec: StudySpec, settings: str, console: Console) -> PairMatrix:
    if len(spec.tasks) < 2:
        raise StudyError("tasks: a transfer matrix needs at least two tasks")
    data = load_study_data(spec)
    tracker = open_tracker(spec)
    parent = tracker.study_run(spec.name, study_params(spec), reopen=False)
    baselines = Baselines(spec, data, tracker, parent)
    base, label = _setting(spec, settings)
    console.print(f"transfer matrix of study {spec.name}: every pair trained with {label}")
    key_of = {}
    for pair in itertools.combinations(spec.task_names, 2):
        config = fixed_config(
            spec,
            list(pair),
            {"model": base.model.model_dump(), "training": base.training.model_dump()},
        )
        key = _key(spec, data, pair, config)
        key_of[pair] = key
        found = tracker.search(
            record.of_kind(record.TRANSFER, "FINISHED", **{record.TRANSFER_KEY: key})
        )
        if found:
            console.print(f"  {','.join(pair)}: reused")
            continue
        with console.status(f"  {','.join(pair)}: training"):
            seconds = _train_pair(spec, data, tracker, parent, baselines, pair, config, key, label)
        console.print(f"  {','.join(pair)}: trained in {seconds:.1f} s")
    runs = tracker.search(record.of_kind(record.TRANSFER, "FINISHED"))
    keys = set(key_of.values())
    matrix = pair_matrix(
        spec.task_names, [r for r in runs if r.data.tags.get(record.TRANSFER_KEY) in keys]
    )
    path = spec.workdir_path / "transfer_matrix.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(matrix.to_csv())
    tracker.log_artifact(parent, path)
    print_matrix(matrix, console, f"Δ % of the row's task trained with the column's ({label})")
    console.print(f"written to {path} and logged on the study run (tracking {mask(spec.tracking)})")
    return matrix


def _setting(spec: StudySpec, settings: str) -> tuple[TrialConfig, str]:
    if settings == "best":
        try:
            study = optuna.load_study(study_name=spec.name, storage=spec.optuna_storage)
        except KeyError:
            study = None
        number, _ = best_of(study) if study is not None else (None, None)
        if number is not None:
            trial = study.trials[number]
            params = {k: v for k, v in trial.params.items() if k != "tasks"}
            narrowed = spec.model_copy(
                update={
                    "search": spec.search.model_copy(
                        update={
                            "space": {k: v for k, v in spec.search.space.items() if k != "tasks"}
                        }
                    )
                }
            )
            return sample(
                optuna.trial.FixedTrial(params), narrowed
            ), f"the settings of best trial {number}"
    return fixed_config(spec), "the study file's fixed settings"


def _key(spec: StudySpec, data, pair, config: TrialConfig) -> str:
    payload = {
        "pair": pair,
        "data": [data.fingerprints[t] for t in pair],
        "features": data.space.fingerprint(),
        "model": model_key(config.model.model_dump()),
        "training": training_key(config.training.model_dump(exclude={"device"})),
        "seed": spec.seed,
        "baselines": spec.baselines.model_dump(),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _train_pair(spec, data, tracker, parent, baselines, pair, config, key, label) -> float:
    started = time.perf_counter()
    tags = {
        record.KIND: record.TRANSFER,
        record.STUDY: spec.name,
        record.TASKS: ",".join(pair),
        record.TRANSFER_KEY: key,
        record.SETTINGS: label,
    }
    run_id = tracker.start_run(f"transfer {','.join(pair)}", parent, tags, config.params)
    try:
        results, per_seed = [], []
        for seed in seeds_of(spec):
            per_task = baselines.get_all(list(pair), config, seed)
            per_seed.append(per_task)
            reference = {t: b.valid for t, b in per_task.items()}
            results.append(
                fit(data.subset(list(pair)), config.train_config(seed), reference=reference)
            )
        summary = _summarise(results, per_seed)
    except BaseException as exc:
        tracker.end_run(run_id, "FAILED", record.failure(exc))
        raise
    metrics = summary.metrics + [(record.TRIAL_S, time.perf_counter() - started, 0)]
    tracker.log(run_id, metrics=metrics)
    tracker.end_run(run_id, "FINISHED")
    return time.perf_counter() - started
