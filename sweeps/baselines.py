"""Single-task baselines in ``matched`` mode: each task alone, with the trial's own settings.

A baseline is trained once per *baseline key* and reused: within a process from memory, across
processes and re-runs from MLflow (``mtl.baseline_key`` on a finished baseline run). The key
holds only what changes a single-task model: the task's data, split and settings, the fitted
feature space, the model, the optimiser settings, the epochs and the seed. Never the schedule,
the weighting or the task set: with one task those change nothing, so a single-task model is
always trained with ``round_robin`` and ``equal`` weighting.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from sweeps.space import TrialConfig
from sweeps.spec import StudySpec
from sweeps.study_data import StudyData
from sweeps.tracking import Tracker

IGNORED_TRAINING = {"schedule", "weighting", "weights", "seeds", "device"}


@dataclass
class Baseline:
    task: str
    key: str
    metric: str
    valid: float  # primary metric, validation split (final epoch)
    test: float  # primary metric, test split
    seconds: float  # training time when trained now, 0 when reused
    reused: bool
    run_id: str


def baseline_key(spec: StudySpec, data: StudyData, task: str, config: TrialConfig) -> str:
    payload = {
        "task": task,
        "data": data.fingerprints[task],
        "features": data.space.fingerprint(),
        "model": config.model.model_dump(),
        "training": config.training.model_dump(exclude=IGNORED_TRAINING),
        "seed": spec.seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[
        :20
    ]


class Baselines:
    def __init__(self, spec: StudySpec, data: StudyData, tracker: Tracker, parent_run: str) -> None:
        self.spec, self.data, self.tracker, self.parent = spec, data, tracker, parent_run
        self._known: dict[str, Baseline] = {}

    def get(self, task: str, config: TrialConfig, on_train=None) -> Baseline:
        key = baseline_key(self.spec, self.data, task, config)
        if key in self._known:
            known = self._known[key]
            return Baseline(**{**known.__dict__, "seconds": 0.0, "reused": True})
        metric = self.data.tasks[task].spec.metric
        run = self.tracker.find_baseline(key)
        if run is not None:
            m = run.data.metrics
            found = Baseline(
                task,
                key,
                metric,
                m[f"valid/{task}/{metric}"],
                m[f"test/{task}/{metric}"],
                0.0,
                True,
                run.info.run_id,
            )
        else:
            found = self._train(task, key, metric, config, on_train)
        self._known[key] = found
        return found

    def _train(self, task: str, key: str, metric: str, config: TrialConfig, on_train) -> Baseline:
        from mtl_core.train import fit

        single = config.train_config(self.spec.seed)
        single.schedule, single.weighting, single.weights = "round_robin", "equal", {}
        params = {
            k: v
            for k, v in config.params.items()
            if not k.startswith(("training.weights", "tasks"))
        }
        params.update(
            {"tasks": task, "training.schedule": "round_robin", "training.weighting": "equal"}
        )
        tags = {"mtl.kind": "baseline", "mtl.task": task, "mtl.baseline_key": key}
        run_id = self.tracker.start_run(f"baseline {task}", self.parent, tags, params)
        started = time.perf_counter()
        try:
            result = fit(self.data.subset([task]), single, on_train or ())
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
        return Baseline(task, key, metric, valid, result.test[task][metric], seconds, False, run_id)
