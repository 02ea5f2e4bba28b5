"""Single-task baselines, trained once per *baseline key* and reused.

``matched`` (default): each task alone with the trial's own settings. The key holds only what
changes a single-task model: the task's data, split and settings, the fitted feature space, the
model, the optimiser settings, the epochs and the seed. Never the schedule, the weighting or
the task set: with one task those change nothing, so a single-task model is always trained
with ``round_robin`` and ``equal`` weighting.

``tuned``: each task's single-task model is tuned once by an Optuna study of its own
(``baselines.trials`` trials over the study's model and training space, best validation
metric wins, see ``sweeps.tuning``); the winner is trained once per seed and reused by every
trial. Its key holds the task, data, features, the space searched, the trial budget and seed.

Reuse works within a process from memory and across processes and re-runs from MLflow (a
FINISHED run tagged ``mtl.baseline_key``). Workers sharing a study claim a key before training
it: a baseline run is RUNNING from its start, and when two workers start the same key at once
the earlier run (start time, then run id) trains while the other waits for it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtl_core.config import single_task_config
from mtl_core.data.prepare import TaskData
from mtl_core.methods import MULTI_TASK_ONLY, SINGLE_TASK_TRAINING, single_task_model
from sweeps import record
from sweeps.models import record_model
from sweeps.parent_run import baselines_description
from sweeps.schema import StudySpec
from sweeps.space import TrialConfig, model_params, tuning_space
from sweeps.stable_keys import model_key, training_key
from sweeps.study_data import StudyData, data_for
from sweeps.tracking import Tracker

# training settings a single-task baseline does not depend on
IGNORED_TRAINING = set(SINGLE_TASK_TRAINING) | MULTI_TASK_ONLY | {"seeds", "device"}


def _training_key(training: Any) -> dict[str, Any]:
    return training_key(training.model_dump(exclude=IGNORED_TRAINING))


def _model_key(model: Any) -> dict[str, Any]:
    return model_key(single_task_model(model.model_dump()))


WAIT_POLL_S = 1.0


@dataclass
class Baseline:
    task: str
    key: str
    metric: str
    valid: float  # primary metric, validation split, of the scored epoch
    test: float  # primary metric, test split, of the scored epoch
    seconds: float  # training (or waiting) time in this trial, 0 when reused
    reused: bool
    run_id: str
    seed: int = 0
    curve: list[float] = field(default_factory=list)  # primary validation metric per epoch
    best_epoch: int = 0

    def valid_at(self, epoch: int) -> float:
        """The validation metric after ``epoch`` epochs; past its last epoch (early stopping,
        fewer epochs) the scored value, which is what it stopped with."""
        if 1 <= epoch <= len(self.curve):
            return self.curve[epoch - 1]
        return self.valid


def _digest(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def baseline_key(
    spec: StudySpec, data: StudyData, task: str, config: TrialConfig, seed: int | None = None
) -> str:
    """The matched-mode key (``seed`` defaults to the study's seed)."""
    return _digest(
        {
            "task": task,
            "data": data.fingerprints[task],
            "features": data.space.fingerprint(),
            "model": _model_key(config.model),
            "training": _training_key(config.training),
            "seed": spec.seed if seed is None else seed,
        }
    )


def tuning_key(spec: StudySpec, data: StudyData, task: str) -> str:
    """What a tuned baseline depends on: everything but the seed it is finally trained with."""
    return _digest(
        {
            "mode": "tuned",
            "task": task,
            "data": data.fingerprints[task],
            "features": data.space.fingerprint(),
            "model": _model_key(spec.model),
            "training": _training_key(spec.training),
            "space": {k: v.model_dump() for k, v in tuning_space(spec).items()},
            "trials": spec.baselines.trials,
            "seed": spec.seed,
        }
    )


class Baselines:
    def __init__(
        self,
        spec: StudySpec,
        data: StudyData,
        tracker: Tracker,
        parent_run: str,
        is_dead: Callable[[str], bool] = lambda ref: False,
    ) -> None:
        """``is_dead(ref)``: whether the trial that claimed a key has died (its worker stopped
        sending heartbeats), so that its claim can be taken over; ``ref`` is a search trial's
        number, or ``confirm:N`` for a confirm trial's."""
        self.spec, self.data, self.tracker, self.study_run = spec, data, tracker, parent_run
        self._group: str | None = None  # the "baselines" run under the study's, made on need
        self.is_dead = is_dead
        self._known: dict[str, Baseline] = {}
        self._teachers: dict[str, np.ndarray] = {}

    def get(
        self,
        task: str,
        config: TrialConfig,
        seed: int | None = None,
        trial_number: int | str | None = None,
        on_train: Sequence[Any] = (),
    ) -> Baseline:
        """The task's baseline for this trial configuration and seed: reused when known,
        else trained (in tuned mode: tuned first, when no tuning is recorded yet)."""
        seed = self.spec.seed if seed is None else seed
        key = self._key(task, config, seed)

        def build() -> tuple[TrialConfig, dict[str, Any]]:
            if self.spec.baselines.mode == "tuned":
                return self._tuned_config(task, on_train)
            return config, {}

        if key in self._known:
            known = self._known[key]
            return Baseline(**{**known.__dict__, "seconds": 0.0, "reused": True})
        started = time.perf_counter()
        found = self._find_or_train(task, key, seed, trial_number, build, on_train)
        if not found.reused:
            found.seconds = time.perf_counter() - started
        self._known[key] = found
        return found

    def get_all(
        self,
        tasks: Sequence[str],
        config: TrialConfig,
        seed: int | None = None,
        trial_number: int | str | None = None,
        on_train: Sequence[Any] = (),
        on_task: Callable[[str], None] = lambda task: None,
    ) -> dict[str, Baseline]:
        """Every task's baseline. A task whose key another worker is training right now is
        put off until the others are done, so that workers train different keys side by
        side instead of waiting on each other."""
        out: dict[str, Baseline] = {}
        deferred = []
        for task in tasks:
            if self._claimed_elsewhere(task, config, seed):
                deferred.append(task)
                continue
            on_task(task)
            out[task] = self.get(task, config, seed, trial_number, on_train)
        for task in deferred:
            on_task(task)
            out[task] = self.get(task, config, seed, trial_number, on_train)
        return {t: out[t] for t in tasks}

    def _claimed_elsewhere(self, task: str, config: TrialConfig, seed: int | None) -> bool:
        key = self._key(task, config, self.spec.seed if seed is None else seed)
        return key not in self._known and self._live_claim(key) is not None

    def _key(self, task: str, config: TrialConfig, seed: int) -> str:
        if self.spec.baselines.mode == "tuned":
            return _digest({"tuned": tuning_key(self.spec, self.data, task), "seed": seed})
        return baseline_key(self.spec, self.data_of(config), task, config, seed)

    def data_of(self, config: TrialConfig) -> StudyData:
        """The data a configuration trains on (its own features when it searched them)."""
        return data_for(self.spec, config.features, self.data, config.options)

    # --------------------------------------------------------------------------------------

    def _find_or_train(self, task, key, seed, trial_number, build, on_train) -> Baseline:
        metric = self.data.tasks[task].spec.metric
        waited = 0.0
        while True:
            # the live claim first, then the finished run: a claim that finishes between the
            # two queries is then still found
            claim = self._live_claim(key)
            run = self.tracker.find_baseline(key)
            if run is not None:
                return self._from_run(task, key, metric, seed, run, waited)
            if claim is None:
                config, extra = build()
                own = self._start(task, key, seed, trial_number, config, extra)
                first = self._live_claim(key)
                done = self.tracker.find_baseline(key)
                if done is not None:  # another worker finished it meanwhile
                    self.tracker.client.delete_run(own)
                    return self._from_run(task, key, metric, seed, done, waited)
                if first is None or first.info.run_id == own:
                    return self._train(task, key, metric, seed, own, config, extra, on_train)
                self.tracker.client.delete_run(own)  # lost a race: the earlier claim trains
                claim = first
            started = time.perf_counter()
            self._wait_for(claim)
            waited += time.perf_counter() - started

    def _live_claim(self, key: str) -> Any | None:
        runs = self.tracker.search(
            record.of_kind(record.BASELINE, "RUNNING", **{record.BASELINE_KEY: key})
        )
        return min(runs, key=lambda r: (r.info.start_time, r.info.run_id)) if runs else None

    def _wait_for(self, claim: Any) -> None:
        """Until the claiming run ends, or its trial is found dead (then close it as failed)."""
        run_id = claim.info.run_id
        number = claim.data.tags.get(record.TRAINED_IN_TRIAL)
        while True:
            run = self.tracker.client.get_run(run_id)
            if run.info.status != "RUNNING" or run.info.lifecycle_stage == "deleted":
                return
            if number is not None and self.is_dead(number):
                self.tracker.end_run(
                    run_id,
                    "FAILED",
                    {record.ERROR: f"trial {number} that trained it died (no heartbeat)"},
                )
                return
            time.sleep(WAIT_POLL_S)

    def _from_run(self, task, key, metric, seed, run, waited: float) -> Baseline:
        m = run.data.metrics
        name = record.valid(task, metric)
        history = self.tracker.client.get_metric_history(run.info.run_id, name)
        return Baseline(
            task,
            key,
            metric,
            m.get(record.selected_valid(task, metric), m[name]),
            m[record.test(task, metric)],
            waited,
            True,
            run.info.run_id,
            seed,
            [p.value for p in sorted(history, key=lambda p: p.step)],
            int(m.get(record.BEST_EPOCH, len(history))),
        )

    def _start(self, task, key, seed, trial_number, config: TrialConfig, extra) -> str:
        single = {f"training.{k}": v for k, v in SINGLE_TASK_TRAINING.items() if k != "weights"}
        model = model_params(single_task_model(config.model.model_dump()))
        params = {
            k: v
            for k, v in config.params.items()
            if not k.startswith(("training.weights", "tasks", "seed", "model."))
            and k.removeprefix("training.") not in MULTI_TASK_ONLY
        }
        params.update({"tasks": task, "seed": seed, **model, **single, **extra})
        tags = {
            record.KIND: record.BASELINE,
            record.STUDY: self.spec.name,
            record.TASK: task,
            record.BASELINE_KEY: key,
            record.BASELINE_MODE: self.spec.baselines.mode,
            record.SEED: str(seed),
        }
        if trial_number is not None:
            tags[record.TRAINED_IN_TRIAL] = str(trial_number)
        name = f"baseline · {task} · h{model.get('model.hidden_size', '?')} · seed {seed}"
        return self.tracker.start_run(name, self._group_run(), tags, params)

    def _group_run(self) -> str:
        if self._group is None:
            name = self.spec.name  # (created with the study run: sweeps.parent_run)
            self._group = self.tracker.group_run(
                self.study_run, name, "baselines", baselines_description(name)
            )
        return self._group

    def _train(self, task, key, metric, seed, run_id, config: TrialConfig, extra, on_train):
        # here, not at the top: torch loads only when this runs
        from mtl_core.train import fit

        single = single_task_config(config.train_config(seed))
        started = time.perf_counter()
        try:
            data = self.data_of(config)
            result = fit(data.subset([task]), single, on_train)
        except BaseException as exc:
            self.tracker.end_run(run_id, "FAILED", record.failure(exc))
            raise
        seconds = time.perf_counter() - started
        metrics = [
            (record.valid(task, m), v, log.epoch)
            for log in result.history
            for m, v in log.valid[task].items()
        ]
        metrics += [
            (record.train_loss(task), log.train_loss[task], log.epoch) for log in result.history
        ]
        metrics += [(record.test(task, m), v, 0) for m, v in result.test[task].items()]
        metrics += [(record.selected_valid(task, m), v, 0) for m, v in result.valid[task].items()]
        metrics.append((record.BEST_EPOCH, result.best_epoch, 0))
        metrics.append((record.TRAIN_S, seconds, 0))
        metrics += data.coverage([task])
        self.tracker.log(run_id, metrics=metrics, params={record.DEVICE: result.device})
        record_model(self.tracker, run_id, result, single, data, seed)
        if self.distills:
            self._keep_teacher(key, run_id, result.model, data.tasks[task])
        self.tracker.end_run(run_id, "FINISHED")
        valid = result.valid[task][metric]
        curve = [log.valid[task][metric] for log in result.history]
        test = result.test[task][metric]
        return Baseline(
            task, key, metric, valid, test, seconds, False, run_id, seed, curve, result.best_epoch
        )

    @property
    def distills(self) -> bool:
        """Whether any trial of the study can distil (then baselines keep their logits)."""
        return self.spec.training.distill > 0 or "training.distill" in self.spec.search.space

    def teacher(self, baseline: Baseline) -> np.ndarray:
        """The baseline model's logits on its task's training rows: from memory, or from the
        ``teacher/TASK.npy`` artifact of its run (read without pickle)."""
        if baseline.key in self._teachers:
            return self._teachers[baseline.key]

        name = f"teacher/{baseline.task}.npy"
        try:
            with tempfile.TemporaryDirectory() as folder:
                path = self.tracker.client.download_artifacts(baseline.run_id, name, folder)
                logits = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise RuntimeError(
                f"distillation needs the logits of baseline run {baseline.run_id} "
                f"({baseline.task}), and its artifact {name} cannot be read: {exc}"
            ) from None
        self._teachers[baseline.key] = logits
        return logits

    def _keep_teacher(self, key: str, run_id: str, model, data: TaskData) -> None:
        # here, not at the top: torch loads only when this runs
        from mtl_core.distill import teacher_logits

        task = data.name
        logits = teacher_logits(model, data, next(model.parameters()).device)
        self._teachers[key] = logits
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{task}.npy"
            np.save(path, logits, allow_pickle=False)
            self.tracker.log_artifact(run_id, path, "teacher")

    def _tuned_config(self, task: str, on_train) -> tuple[TrialConfig, dict[str, Any]]:
        # here, not at the top: optuna loads only when this runs
        from sweeps.tuning import tune

        outcome = tune(self.spec, self.data, task, tuning_key(self.spec, self.data, task), on_train)
        extra = {
            "baselines.trials": self.spec.baselines.trials,
            "tuning.study": outcome.study_name,
            "tuning.best_trial": outcome.best_number,
            "tuning.best_valid": outcome.best_value,
        }
        return outcome.config, extra
