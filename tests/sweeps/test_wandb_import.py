"""`sweeps import-wandb`: a W&B sweep file becomes a study that validates and trains; every
key that cannot be carried over is named with its reason; bad files and a translation that
would not validate are refused with exit 2 and nothing written."""

from __future__ import annotations

import math

import yaml

from sweeps.spec import load_spec
from sweeps.wandb_import import translate
from tests.helpers import SENTIMENT, cli, small_study, two_tasks

SWEEP = {
    "program": "train.py",
    "name": "reviews sweep",
    "description": "lr and width",
    "method": "bayes",
    "metric": {"name": "val_f1", "goal": "maximize"},
    "parameters": {
        "learning_rate": {"min": 0.001, "max": 0.05, "distribution": "log_uniform_values"},
        "batch_size": {"values": [32, 64]},
        "hidden_size": {"min": 8, "max": 32},
        "model.dropout": {"min": 0.0, "max": 0.3},
        "epochs": {"value": 1},
        "optimizer": {"value": "adam"},
        "training.weighting": {"values": ["equal", "uncertainty"], "probabilities": [0.5, 0.5]},
        "momentum": {"min": 0.5, "max": 0.9},
        "depth": {"distribution": "normal", "mu": 2, "sigma": 1},
    },
    "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
    "run_cap": 3,
}


def _write(folder, name, content) -> str:
    (folder / name).write_text(yaml.safe_dump(content), encoding="utf-8")
    return str(folder / name)


def _tasks(folder):
    """A tasks file with relative data paths, in its own folder."""
    tasks = two_tasks(small_study("t"))["tasks"]
    data = folder / "data"
    data.mkdir(parents=True)
    for name, task in tasks.items():
        (data / f"{name}.txt").write_bytes((SENTIMENT / f"{name}_labelled.txt").read_bytes())
        task["path"] = f"data/{name}.txt"
    return _write(folder, "tasks.yaml", {"tasks": tasks, "features": {"text": {"kind": "bow"}}})


def test_a_wandb_sweep_becomes_a_study_that_validates_and_trains(tmp_path):
    tasks = _tasks(tmp_path / "inputs")
    sweep = _write(tmp_path, "sweep.yaml", SWEEP)
    (tmp_path / "studies").mkdir()
    out = tmp_path / "studies" / "study.yaml"
    done = cli("import-wandb", sweep, "--tasks", tasks, "--out", str(out))
    assert done.returncode == 0, done.stderr
    spec = load_spec(out)
    assert spec.name == "reviews-sweep"
    assert spec.search.sampler == "gp" and spec.search.pruner == "hyperband"
    assert spec.search.pruner_warmup == 1 and spec.search.n_trials == 3
    space = spec.search.space
    assert (space["training.lr"].low, space["training.lr"].high) == (0.001, 0.05)
    assert space["training.lr"].log
    assert space["training.batch_size"].choices == [32, 64]
    assert (space["model.hidden_size"].low, space["model.hidden_size"].high) == (8, 32)
    assert (space["model.dropout"].low, space["model.dropout"].high) == (0.0, 0.3)
    assert space["training.weighting"].choices == ["equal", "uncertainty"]
    assert spec.training.epochs == 1 and spec.training.optimizer == "adam"
    assert {t.metric for t in spec.tasks.values()} == {"f1"}
    # the tasks' relative paths now point from the study's folder to the same files
    assert spec.tasks["imdb"].path == "../inputs/data/imdb.txt"
    # what could not be carried is said, on the command line and in the file's header
    for needle in (
        "parameters.momentum: names no study setting",
        "parameters.depth: distribution: 'normal' without min/max cannot be carried",
        "parameters.training.weighting: probabilities: not carried",
        "early_terminate.eta: 2; the study's Hyperband halves by 3",
        "metric: 'val_f1' (maximize): the study's objective is the validation Δm",
        "program: not needed",
    ):
        assert needle in done.stdout, needle
        assert needle in out.read_text(), needle
    assert "# W&B description: lr and width" in out.read_text()
    # the study is a real one: validate reads its data, and a trial trains
    assert cli("validate", str(out)).returncode == 0
    ran = cli("run", str(out), "--trials", "1", "--quiet")
    assert ran.returncode == 0, ran.stderr


def test_distributions_translate_to_their_ranges():
    study, lost = translate(
        {
            "method": "random",
            "parameters": {
                "lr": {"min": math.log(1e-4), "max": math.log(1e-1), "distribution": "log_uniform"},
                "dropout": {"min": 0.0, "max": 0.5, "distribution": "q_uniform", "q": 0.1},
                "hidden_size": {"min": 16, "max": 64, "distribution": "int_uniform"},
                "layers": {"values": [1, 2]},
                "width": {"min": 1, "max": 2, "distribution": "beta"},
            },
        },
        {"tasks": {}},
        {"f1"},
    )
    space = study["search"]["space"]
    assert study["search"]["sampler"] == "random"
    assert space["training.lr"] == {"low": 1e-4, "high": 0.1, "log": True}
    assert space["model.dropout"] == {"low": 0.0, "high": 0.5, "step": 0.1}
    assert space["model.hidden_size"] == {"low": 16, "high": 64, "step": 1}
    assert space["model.depth"] == {"choices": [1, 2]}
    assert any(line.startswith("parameters.width: distribution: 'beta'") for line in lost)
    assert "model.hidden_size" in space and len(space) == 4  # width (beta) not carried


def test_bad_inputs_are_refused_and_nothing_is_written(tmp_path):
    tasks = _tasks(tmp_path)
    sweep = _write(tmp_path, "sweep.yaml", SWEEP)
    out = tmp_path / "study.yaml"
    out.write_text("name: keep\n")
    cases = [
        ([sweep, "--tasks", tasks, "--out", str(out)], f"--out: {out} exists; --force"),
        ([sweep, "--tasks", tasks, "--out", str(tmp_path / "s.txt")], "ends in .yaml or .yml"),
        ([str(tmp_path / "nope.yaml"), "--tasks", tasks, "--out", str(tmp_path / "a.yaml")],
         "SWEEP: no such file"),
        ([sweep, "--tasks", _write(tmp_path, "empty.yaml", {"tasks": {}}),
          "--out", str(tmp_path / "b.yaml")], "holds no tasks"),
        ([_write(tmp_path, "bad.yaml", {**SWEEP, "parameters": {"lr": {
            "min": -1, "max": 1, "distribution": "log_uniform_values"}}}),
          "--tasks", tasks, "--out", str(tmp_path / "c.yaml")],
         "the translated study: search.space.training.lr"),
    ]  # fmt: skip
    for args, needle in cases:
        done = cli("import-wandb", *args)
        assert done.returncode == 2 and needle in done.stderr, (needle, done.stderr)
        assert "Traceback" not in done.stderr
    assert out.read_text() == "name: keep\n"
    assert not any((tmp_path / n).exists() for n in ("s.txt", "a.yaml", "b.yaml", "c.yaml"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file"
    done = cli("import-wandb", sweep, "--tasks", tasks, "--out", str(out), "--force")
    assert done.returncode == 0 and "reviews-sweep" in out.read_text()


def test_odd_inputs_are_carried_or_named_never_a_traceback(tmp_path):
    tasks = _tasks(tmp_path / "in")
    (tmp_path / "out").mkdir()
    # a key given twice, as a study file is checked
    dup = tmp_path / "dup.yaml"
    dup.write_text("method: grid\nmethod: random\n", encoding="utf-8")
    done = cli(
        "import-wandb", str(dup), "--tasks", tasks, "--out", str(tmp_path / "out" / "d.yaml")
    )
    assert done.returncode == 2 and "duplicate key 'method'" in done.stderr
    sweep = {
        "method": "random",
        "parameters": {
            "features.text.max_features": {"value": 500},  # three-part keys, nested right
            "training.weights.imdb": {"value": 2.0},
            "bad\nkey: injected": {"values": [1, 2]},  # a newline must not reach the YAML
        },
        "early_terminate": {"type": "hyperband", "min_iter": "abc"},
    }
    out = tmp_path / "out" / "s.yaml"
    done = cli("import-wandb", _write(tmp_path, "s.yaml", sweep), "--tasks", tasks,
               "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "early_terminate.min_iter: 'abc' is not a positive whole number" in done.stdout
    spec = load_spec(out)
    assert spec.features["text"].max_features == 500
    assert spec.training.weights == {"imdb": 2.0}
    lines = out.read_text().splitlines()
    assert [line for line in lines if "injected" in line and not line.startswith("#")] == []
    assert lines[next(i for i, line in enumerate(lines) if not line.startswith("#"))] == "name: s"
    assert "injected" not in yaml.safe_load(out.read_text())


def test_split_files_and_the_workdir_are_rewritten_for_the_studys_folder(tmp_path):
    folder = tmp_path / "in"
    _tasks(folder)
    tasks = two_tasks(small_study("t"))["tasks"]
    for name, task in tasks.items():
        task.pop("path")
        task["split"] = {"train": f"data/{name}.txt", "valid": 0.2, "test": f"data/{name}.txt"}
    tasks_file = _write(folder, "split.yaml", {"tasks": tasks, "workdir": "runs"})
    (tmp_path / "studies").mkdir()
    out = tmp_path / "studies" / "study.yaml"
    done = cli("import-wandb", _write(tmp_path, "w.yaml", {"method": "random"}),
               "--tasks", tasks_file, "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    spec = load_spec(out)
    assert spec.tasks["imdb"].split.train == "../in/data/imdb.txt"
    assert spec.tasks["imdb"].split.valid == 0.2
    assert spec.workdir_path == (tmp_path / "in" / "runs").resolve()
