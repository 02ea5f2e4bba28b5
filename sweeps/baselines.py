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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sweeps.space import TrialConfig, tuning_space
from sweeps.spec import StudySpec
from sweeps.study_data import StudyData
from sweeps.tracking import Tracker

IGNORED_TRAINING = {
    "schedule",
    "weighting",
    "weights",
    "seeds",
    "device",
    "affinity_every",
    "diagnostics_every",
}
WAIT_POLL_S = 1.0


@dataclass
class Baseline:
    task: str
    key: str
    metric: str
    valid: float  # primary metric, validation split (final epoch)
    test: float  # primary metric, test split
    seconds: float  # training (or waiting) time in this trial, 0 when reused
    reused: bool
    run_id: str
    seed: int = 0


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
            "model": config.model.model_dump(),
            "training": config.training.model_dump(exclude=IGNORED_TRAINING),
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
            "model": spec.model.model_dump(),
            "training": spec.training.model_dump(exclude=IGNORED_TRAINING),
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
        is_dead: Callable[[int], bool] = lambda number: False,
    ) -> None:
        """``is_dead(trial_number)``: whether the trial that claimed a key has died (its
        worker stopped sending heartbeats), so that its claim can be taken over."""
        self.spec, self.data, self.tracker, self.parent = spec, data, tracker, parent_run
        self.is_dead = is_dead
        self._known: dict[str, Baseline] = {}

    def get(
        self,
        task: str,
        config: TrialConfig,
        seed: int | None = None,
        trial_number: int | None = None,
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
        trial_number: int | None = None,
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
        return baseline_key(self.spec, self.data, task, config, seed)

    # --------------------------------------------------------------------------------------

    def _find_or_train(self, task, key, seed, trial_number, build, on_train) -> Baseline:
        metric = self.data.tasks[task].spec.metric
        waited = 0.0
        while True:
            run = self.tracker.find_baseline(key)
            if run is not None:
                return self._from_run(task, key, metric, seed, run, waited)
            claim = self._live_claim(key)
            if claim is None:
                config, extra = build()
                own = self._start(task, key, seed, trial_number, config, extra)
                first = self._live_claim(key)
                if first is None or first.info.run_id == own:
                    return self._train(task, key, metric, seed, own, config, extra, on_train)
                self.tracker.client.delete_run(own)  # lost a race: the earlier claim trains
                claim = first
            started = time.perf_counter()
            self._wait_for(claim)
            waited += time.perf_counter() - started

    def _live_claim(self, key: str) -> Any | None:
        runs = self.tracker.search(
            f"tags.`mtl.kind` = 'baseline' and tags.`mtl.baseline_key` = '{key}' "
            "and attributes.status = 'RUNNING'"
        )
        return min(runs, key=lambda r: (r.info.start_time, r.info.run_id)) if runs else None

    def _wait_for(self, claim: Any) -> None:
        """Until the claiming run ends, or its trial is found dead (then close it as failed)."""
        run_id = claim.info.run_id
        number = claim.data.tags.get("mtl.trained_in_trial")
        while True:
            run = self.tracker.client.get_run(run_id)
            if run.info.status != "RUNNING" or run.info.lifecycle_stage == "deleted":
                return
            if number is not None and self.is_dead(int(number)):
                self.tracker.end_run(
                    run_id,
                    "FAILED",
                    {"mtl.error": f"trial {number} that trained it died (no heartbeat)"},
                )
                return
            time.sleep(WAIT_POLL_S)

    def _from_run(self, task, key, metric, seed, run, waited: float) -> Baseline:
        m = run.data.metrics
        return Baseline(
            task,
            key,
            metric,
            m[f"valid/{task}/{metric}"],
            m[f"test/{task}/{metric}"],
            waited,
            True,
            run.info.run_id,
            seed,
        )

    def _start(self, task, key, seed, trial_number, config: TrialConfig, extra) -> str:
        params = {
            k: v
            for k, v in config.params.items()
            if not k.startswith(("training.weights", "tasks", "seed"))
        }
        params.update(
            {
                "tasks": task,
                "seed": seed,
                "training.schedule": "round_robin",
                "training.weighting": "equal",
                **extra,
            }
        )
        tags = {
            "mtl.kind": "baseline",
            "mtl.study": self.spec.name,
            "mtl.task": task,
            "mtl.baseline_key": key,
            "mtl.baseline_mode": self.spec.baselines.mode,
            "mtl.seed": str(seed),
        }
        if trial_number is not None:
            tags["mtl.trained_in_trial"] = str(trial_number)
        return self.tracker.start_run(f"baseline {task} seed {seed}", self.parent, tags, params)

    def _train(self, task, key, metric, seed, run_id, config: TrialConfig, extra, on_train):
        from mtl_core.train import fit

        single = config.train_config(seed)
        single.schedule, single.weighting, single.weights = "round_robin", "equal", {}
        single.affinity_every = single.diagnostics_every = 0  # trial-only measurements
        started = time.perf_counter()
        try:
            result = fit(self.data.subset([task]), single, on_train)
        except BaseException as exc:
            self.tracker.end_run(
                run_id, "FAILED", {"mtl.error": f"{type(exc).__name__}: {exc}"[:5000]}
            )
            raise
        seconds = time.perf_counter() - started
        metrics = [
            (f"valid/{task}/{m}", v, log.epoch)
            for log in result.history
            for m, v in log.valid[task].items()
        ]
        metrics += [
            (f"train/{task}/loss", log.train_loss[task], log.epoch) for log in result.history
        ]
        metrics += [(f"test/{task}/{m}", v, 0) for m, v in result.test[task].items()]
        metrics.append(("time/train_s", seconds, 0))
        self.tracker.log(run_id, metrics=metrics)
        self.tracker.end_run(run_id, "FINISHED")
        valid = result.valid[task][metric]
        return Baseline(
            task, key, metric, valid, result.test[task][metric], seconds, False, run_id, seed
        )

    def _tuned_config(self, task: str, on_train) -> tuple[TrialConfig, dict[str, Any]]:
        from sweeps.tuning import tune

        outcome = tune(self.spec, self.data, task, tuning_key(self.spec, self.data, task), on_train)
        extra = {
            "baselines.trials": self.spec.baselines.trials,
            "tuning.study": outcome.study_name,
            "tuning.best_trial": outcome.best_number,
            "tuning.best_valid": outcome.best_value,
        }
        return outcome.config, extra
