"""What a trial logs with ``training.diagnostics_every: N`` (README, "Diagnostics").

Per epoch (means over seeds): ``grad_norm/PARAM`` (gradient norm of each parameter tensor, e.g.
``grad_norm/trunk.0.weight``) and ``grad_cos/I/J`` (cosine of tasks I and J's gradients on
the shared parameters; negative = conflict). After training (first seed), with single-task
models trained for the purpose: ``features/TASK/spearman`` (rank correlation of input-feature
importance in the multi-task model and in TASK's single-task model) and the artifact
``features.json`` (the 20 most important features of each), and for every ordered pair of
tasks whose heads are compatible, ``cross/A_via_B/METRIC`` (A's test rows through the
multi-task model's B head) and ``cross_single/A_via_B/METRIC`` (through B's single-task
model). ``time/diagnostics_s`` is what it cost.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from scipy.stats import spearmanr

from mtl_core.config import single_task_config
from mtl_core.diagnostics import compatible, cross_task_scores, feature_importance, top_features
from mtl_core.train import FitResult, fit
from sweeps import record
from sweeps.space import TrialConfig
from sweeps.study_data import StudyData
from sweeps.tracking import Tracker


def log_diagnostics(
    tracker: Tracker,
    run_id: str,
    data: StudyData,
    config: TrialConfig,
    result: FitResult,
    seed: int,
) -> float:
    started = time.perf_counter()
    tasks = result.tasks
    single_config = single_task_config(config.train_config(seed))
    singles = {t: fit(data.subset([t]), single_config).model for t in tasks}
    names = data.space.feature_names()
    multi = feature_importance(result.model)
    report = {"multi": top_features(multi, names), "single": {}, "spearman": {}}
    metrics = []
    for t, model in singles.items():
        own = feature_importance(model)
        rho = float(spearmanr(multi, own).statistic)
        report["single"][t] = top_features(own, names)
        report["spearman"][t] = rho
        metrics.append((record.feature_spearman(t), rho, 0))
    device = next(result.model.parameters()).device
    for a in tasks:
        for b in tasks:
            spec_a, spec_b = data.tasks[a].spec, data.tasks[b].spec
            if a == b or not compatible(spec_a, spec_b):
                continue
            via_multi = cross_task_scores(result.model, b, spec_b, data.tasks[a], "test", device)
            via_single = cross_task_scores(singles[b], b, spec_b, data.tasks[a], "test", device)
            metrics += [(record.cross(a, b, m), v, 0) for m, v in via_multi.items()]
            metrics += [(record.cross(a, b, m, single=True), v, 0) for m, v in via_single.items()]
    seconds = time.perf_counter() - started
    metrics.append((record.DIAGNOSTICS_S, seconds, 0))
    tracker.log(run_id, metrics=metrics)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "features.json"
        path.write_text(json.dumps(report, indent=1))
        tracker.log_artifact(run_id, path)
    return seconds
