"""Other paths through `sweeps run`: sampled combinations that cannot train, light commands,
and the in-process API."""

from __future__ import annotations

import subprocess
import sys

import optuna
from mlflow.tracking import MlflowClient

from sweeps.runner import run_study
from sweeps.spec import load_spec
from tests.helpers import cli, small_study, sweeps, write_study


def test_sampled_combination_that_cannot_train_is_pruned_with_reason(tmp_path):
    study = small_study(
        "prune",
        training={"epochs": 1, "weights": {"imdb": 2.0}},
        search={
            "n_trials": 6,
            "sampler": "random",
            "pruner": "none",
            "space": {
                "training.weighting": {"choices": ["equal", "static"]},
                "tasks": {"subsets": {"min_size": 1}},
            },
        },
    )
    spec = load_spec(write_study(tmp_path, study))
    summary = run_study(spec)
    assert summary.finished == 6
    storage = f"sqlite:///{tmp_path / '.sweeps' / 'optuna.db'}"
    trials = optuna.load_study(study_name="prune", storage=storage).trials
    impossible = [
        t
        for t in trials
        if t.params["training.weighting"] == "static" and t.params["tasks"] != "imdb"
    ]
    assert impossible, "the seed drew no impossible combination; change the seed"
    client = MlflowClient(spec.tracking)
    exp = client.get_experiment_by_name("prune").experiment_id
    for t in trials:
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        if t in impossible:
            assert t.state == optuna.trial.TrialState.PRUNED
            assert run.data.tags["mtl.state"] == "PRUNED"
            assert "needs a weight for every task" in run.data.tags["mtl.error"]
            assert not any(k.startswith("delta") for k in run.data.metrics)
            # a pruned trial is not a failure: FINISHED (the MLflow UI draws KILLED as a red
            # cross), and its name says what happened
            assert run.info.status == "FINISHED"
            assert run.info.run_name.startswith(f"trial {t.number} · ")
            assert run.info.run_name.endswith(" · static · h16 · pruned"), run.info.run_name
        else:
            assert t.state == optuna.trial.TrialState.COMPLETE, t.user_attrs
            assert run.info.status == "FINISHED" and not run.info.run_name.endswith("pruned")
    # nothing was trained for the pruned trials: no baseline run of a task only they held
    assert not client.search_runs([exp], "attributes.status = 'RUNNING'")


def test_static_weights_are_applied(tmp_path):
    study = small_study(
        "static",
        training={
            "epochs": 1,
            "weighting": "static",
            "weights": {"imdb": 2.0, "yelp": 0.5, "amazon": 1.0},
        },
    )
    spec = load_spec(write_study(tmp_path, study))
    run_study(spec, n_trials=1)
    client = MlflowClient(spec.tracking)
    exp = client.get_experiment_by_name("static").experiment_id
    (run,) = client.search_runs([exp], "tags.`mtl.kind` = 'trial'")
    assert run.data.metrics["weight/imdb"] == 2.0 and run.data.metrics["weight/yelp"] == 0.5


def test_help_and_validate_load_neither_torch_nor_mlflow(tmp_path):
    write_study(tmp_path, small_study())
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from sweeps.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(app, ['validate', 'study.yaml'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in ('torch', 'mlflow', 'optuna') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    # `sweeps methods` prints a table from the registry: not even scikit-learn or pandas (it
    # took 1.25 s when `import mtl_core` loaded them; 0.17 s now, benchmarks/cli_startup.py)
    methods = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from sweeps.cli import app\n"
        "r = CliRunner().invoke(app, ['methods'])\n"
        "assert r.exit_code == 0 and 'pcgrad' in r.output, r.output\n"
        "print(sorted(m for m in ('torch', 'mlflow', 'optuna', 'sklearn', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", methods], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_same_seed_same_metrics(tmp_path):
    metrics = []
    for folder in ("a", "b"):
        spec = load_spec(
            write_study(tmp_path / folder, small_study("repro", training={"epochs": 1}))
        )
        run_study(spec, n_trials=1)
        client = MlflowClient(spec.tracking)
        exp = client.get_experiment_by_name("repro").experiment_id
        (run,) = client.search_runs([exp], "tags.`mtl.kind` = 'trial'")
        metrics.append({k: v for k, v in run.data.metrics.items() if not k.startswith("time/")})
    assert metrics[0] == metrics[1]


def test_two_local_workers_share_one_study(tmp_path):
    space = {"tasks": {"subsets": {"min_size": 2}}, "model.hidden_size": {"choices": [8, 16, 32]}}
    study = small_study(
        "pair",
        training={"epochs": 1},
        search={"n_trials": 4, "sampler": "random", "pruner": "none", "space": space},
    )
    write_study(tmp_path, study)
    result = sweeps("run", "study.yaml", "--workers", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(
        study_name="pair", storage=f"sqlite:///{tmp_path / '.sweeps' / 'optuna.db'}"
    ).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4  # exactly the trials asked for, never one per worker more
    assert all(t.user_attrs.get("surplus") for t in trials if t not in complete)
    # (which process ran how many is a race: the helper starts a few seconds later)
    trials = complete
    client = MlflowClient(f"sqlite:///{tmp_path / '.sweeps' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("pair").experiment_id
    runs = client.search_runs([exp], "tags.`mtl.kind` = 'trial'")
    numbers = [int(r.data.tags["mtl.trial_number"]) for r in runs]
    assert sorted(numbers) == sorted(t.number for t in trials), (
        "a trial was run twice or not recorded"
    )
    assert not client.search_runs([exp], "attributes.status = 'RUNNING'")
    # the two processes draw from differently seeded samplers
    assert len({t.params["tasks"] + str(t.params["model.hidden_size"]) for t in trials}) > 1


def test_changing_the_objective_of_an_existing_study_is_refused(tmp_path):
    study = small_study("obj", training={"epochs": 1}, search={"n_trials": 1})
    study["tasks"].pop("amazon")
    write_study(tmp_path, study)
    assert cli("run", "study.yaml", cwd=tmp_path).returncode == 0
    study["search"].update({"objective": "per_task", "pruner": "none", "n_trials": 2})
    write_study(tmp_path, study)
    result = cli("run", "study.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "search.objective" in result.stderr and "already exists" in result.stderr
    assert "Traceback" not in result.stderr
