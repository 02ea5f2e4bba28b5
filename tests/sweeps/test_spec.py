"""sweeps.spec: a study file becomes a checked ``StudySpec``. Malformed studies exit 2 with one
message naming the field or file, no traceback, and nothing written (no Optuna trial, no MLflow
run, no store file); store URIs expand environment variables and default to the workdir."""

from __future__ import annotations

import copy

import pytest
import yaml

from sweeps.errors import StudyError
from sweeps.spec import load_spec
from tests.helpers import assert_refused, cli, small_study, sweeps, write_study


def _set(study: dict, dotted: list, value) -> dict:
    study = copy.deepcopy(study)
    node = study
    for key in dotted[:-1]:
        node = node.setdefault(key, {})
    if value is _DELETE:
        del node[dotted[-1]]
    else:
        node[dotted[-1]] = value
    return study


_DELETE = object()

CASES = {
    "wrong type": (["model", "hidden_size"], "big", ["model.hidden_size", "integer"]),
    "unknown key": (
        ["model", "hiden_size"],
        32,
        ["model.hiden_size", "unknown key", "hidden_size"],
    ),
    "unknown task type": (
        ["tasks", "imdb", "type"],
        "binaryy",
        ["tasks.imdb.type", "'multiclass'"],
    ),
    "metric of another type": (["tasks", "imdb", "metric"], "mse", ["tasks.imdb", "'mse'", "f1"]),
    "missing file": (
        ["tasks", "imdb", "path"],
        "nope/imdb.txt",
        ["tasks.imdb.path", "nope/imdb.txt"],
    ),
    "missing column": (["tasks", "yelp", "target"], "stars", ["tasks.yelp", "'stars'"]),
    "missing required": (["tasks", "imdb", "inputs"], _DELETE, ["tasks.imdb.inputs", "required"]),
    "inverted range": (
        ["search", "space"],
        {"model.hidden_size": {"low": 64, "high": 8}},
        ["search.space.model.hidden_size", "inverted range"],
    ),
    "unknown task in subset": (
        ["search", "space"],
        {"tasks": {"subsets": {"min_size": 2, "include": ["netflix"]}}},
        ["search.space.tasks", "netflix"],
    ),
    "not searchable": (
        ["search", "space"],
        {"model.width": {"choices": [1, 2]}},
        ["search.space.model.width", "model.hidden_size"],
    ),
    "bad choice": (
        ["search", "space"],
        {"training.schedule": {"choices": ["joint", "zigzag"]}},
        ["search.space.training.schedule", "zigzag"],
    ),
    "option of no built-in source": (
        ["search", "space"],
        {"options.correlation": {"choices": [0.0, 1.0]}},
        ["search.space.options.correlation", "no built-in source of this study takes"],
    ),
    "static weight of an unknown task": (
        ["search", "space"],
        {"training.weights.netflix": {"low": 0.1, "high": 10}},
        ["search.space.training.weights.netflix", "no task 'netflix'"],
    ),
    "feature setting of a column no task reads": (
        ["search", "space"],
        {"features.review.max_features": {"choices": [10, 20]}},
        ["search.space.features.review.max_features", "no task reads a column 'review'"],
    ),
    "float range on an integer": (
        ["search", "space"],
        {"model.depth": {"low": 1.5, "high": 3}},
        ["search.space.model.depth", "integer"],
    ),
    "gradient method without the joint schedule": (
        ["training", "weighting"],
        "pcgrad",
        ["training.weighting", "no trial could train", "needs schedule `joint`"],
    ),
    "unknown method": (
        ["training", "weighting"],
        "pcgrad2",
        ["training.weighting", "'pcgrad2'", "sweeps methods"],
    ),
    "static without weights": (
        ["training", "weighting"],
        "static",
        ["training.weighting", "needs a weight for every task"],
    ),
    "weight for an unknown task": (
        ["training", "weights"],
        {"netflix": 1.0},
        ["training.weights.netflix"],
    ),
    "bad task name": (["tasks", "IMDB"], {"path": "x.txt"}, ["IMDB", "[a-z0-9_]+"]),
    "split leaves no training rows": (
        ["tasks", "imdb", "split"],
        {"valid": 0.5, "test": 0.5},
        ["tasks.imdb.split"],
    ),
    "headerless without columns": (
        ["tasks", "imdb", "columns"],
        _DELETE,
        ["tasks.imdb", "columns"],
    ),
    # issue 19's user errors: each exited 1, or passed validate and failed every trial
    "negative seed": (["seed"], -1, ["seed", "greater than or equal to 0"]),
    "seed past 2**32": (["seed"], 2**32, ["seed", "less than or equal to 4294967295"]),
    "infinite weight decay": (
        ["training", "weight_decay"],
        float("inf"),
        ["training.weight_decay", "finite"],
    ),
    "task name with a trailing newline": (
        ["tasks", "imdb\n"],
        {"path": "x.txt"},
        ["'imdb\\n'", "[a-z0-9_]+"],
    ),
    "a task twice in a task set": (
        ["search", "space"],
        {"tasks": {"choices": [["imdb", "imdb"]]}},
        ["search.space.tasks", "names imdb twice"],
    ),
    "workdir that is a file": (["workdir"], "study.yaml", ["workdir", "is a file, not a folder"]),
    "storage that is no URI": (["storage"], "postgresql//db", ["storage", "not a URI"]),
    "tracking scheme nobody serves": (
        ["tracking_uri"],
        "ftp://host/x",
        ["tracking_uri", "'ftp' is not supported", "postgresql"],
    ),
    "unreadable database URL": (
        ["storage"],
        "postgresql://u@db:port/x",
        ["storage", "not a database URL that can be read"],
    ),
    "name with a newline": (["name"], "a\nb", ["name", "control character"]),
    "task names one suffix apart": (
        ["tasks", "imdb_std"],
        {"path": "x.txt"},
        ["'imdb' and 'imdb_std' collide", "delta/imdb_std"],
    ),
    "name with both quotes": (["name"], 'it\'s "x"', ["name", "both ' and"]),
    "name ending in a backslash": (["name"], "runs\\", ["name", "backslash"]),
    "SQLite storage in a missing folder": (
        ["storage"],
        "sqlite:///nowhere/optuna.db",
        ["storage", "nowhere", "does not exist"],
    ),
    "SQLite tracking in a missing folder": (
        ["tracking_uri"],
        "sqlite:///nowhere/mlflow.db",
        ["tracking_uri", "nowhere", "does not exist"],
    ),
    "a feature column MLflow cannot name": (
        ["features", "text|raw"],
        {"max_features": 100},
        ["features.'text|raw'", "a param name may only hold letters"],
    ),
    "a feature column with a '..' part": (
        ["features", "a/../b"],
        {"max_features": 100},
        ["features.'a/../b'", "'.'/'..' parts"],
    ),
    "a task named delta": (["tasks", "delta"], {"path": "x.txt"}, ["'delta' is a word of"]),
    "a task named valid": (["tasks", "valid"], {"path": "x.txt"}, ["'valid' is a word of"]),
    "an infinite searched weight": (
        ["search", "space"],
        {"training.weights.imdb": {"choices": [1.0, float("inf")]}},
        ["search.space.training.weights.imdb", "finite"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_refuses_and_writes_nothing(tmp_path, case):
    dotted, value, needles = CASES[case]
    write_study(tmp_path, _set(small_study(), dotted, value))
    assert_refused(cli("run", "study.yaml", cwd=tmp_path), needles, tmp_path)


@pytest.mark.parametrize(
    "case", ["wrong type", "missing column", "inverted range", "unknown task in subset"]
)
def test_validate_refuses(tmp_path, case):
    dotted, value, needles = CASES[case]
    write_study(tmp_path, _set(small_study(), dotted, value))
    assert_refused(cli("validate", "study.yaml", cwd=tmp_path), needles, tmp_path)  # a real process


def test_duplicate_keys_and_alias_bombs_are_refused(tmp_path):
    path = write_study(tmp_path, small_study())
    text = path.read_text()
    path.write_text(text + "training:\n  epochs: 3\n")  # a second training block
    result = cli("validate", str(path), cwd=tmp_path)
    assert_refused(result, ["duplicate key 'training'", "first at line"], tmp_path)
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    bomb += [f"{b}: &{b} [*{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}]"
             for a, b in zip("abcdefgh", "bcdefghi", strict=True)]  # fmt: skip
    path.write_text(text + "\n".join(bomb) + "\n")  # 10**9 values from 1 KB
    assert len(path.read_bytes()) - len(text) < 1500
    result = cli("validate", str(path), cwd=tmp_path)
    assert_refused(result, ["more than 100,000 values through YAML aliases"], tmp_path)
    assert len(result.stderr) < 1000
    # keys compared as YAML reads them: `yes` and `true` are one label_map key (True), the
    # second of which replaced the first without a word
    study = small_study()
    study["tasks"]["imdb"]["label_map"] = "LABEL_MAP"
    path.write_text(
        yaml.safe_dump(study, sort_keys=False).replace("LABEL_MAP", "{yes: 1, true: 0}")
    )
    result = cli("validate", str(path), cwd=tmp_path)
    assert_refused(result, ["duplicate key 'true'", "read as the same key"], tmp_path)


def test_subsets_of_many_tasks_are_counted_not_listed(tmp_path):
    study = small_study("many")
    task = study["tasks"]["imdb"]
    study["tasks"] = {f"t{i:02d}": dict(task) for i in range(24)}
    study["search"]["space"] = {"tasks": {"subsets": {"min_size": 2}}}
    result = cli("validate", str(write_study(tmp_path, study)), cwd=tmp_path)
    assert_refused(result, ["search.space.tasks", "16,777,191 task combinations"], tmp_path)
    study["search"]["space"] = {"tasks": {"subsets": {"min_size": 2, "max_size": 2}}}
    result = cli("validate", str(write_study(tmp_path, study)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr  # 276 pairs: fine


def test_a_name_with_markup_and_an_apostrophe_runs_and_shows(tmp_path):
    name = "it's [/x] [bold]"
    study = small_study(name, training={"epochs": 1}, search={"n_trials": 1})
    study["tasks"].pop("amazon")
    path = write_study(tmp_path, study)
    checked = cli("validate", str(path), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert f"study {name}: valid" in checked.stdout  # printed as written, not as markup
    for _ in range(2):  # a second run finds the study run again instead of failing
        ran = cli("run", str(path), "--quiet", cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
    status = cli("status", str(path), cwd=tmp_path)
    assert status.returncode == 0 and name in status.stdout, status.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / '.sweeps' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name).experiment_id
    study_runs = client.search_runs([experiment], "tags.`mtl.kind` = 'study'")
    assert [r.info.status for r in study_runs] == ["FINISHED"]


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    (tmp_path / "study.yaml").write_text("name: x\ntasks:\n  imdb: {path: a.txt\n  yelp: 3\n")
    result = cli("validate", "study.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "study.yaml:" in result.stderr and "not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_field_errors_carry_the_yaml_line(tmp_path):
    write_study(tmp_path, _set(small_study(), ["model", "hidden_size"], "big"))
    lines = (tmp_path / "study.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "hidden_size" in text)
    result = cli("validate", "study.yaml", cwd=tmp_path)
    assert f"study.yaml:{line}: model.hidden_size" in result.stderr


def test_missing_study_file(tmp_path):
    result = sweeps("run", "absent.yaml", cwd=tmp_path)  # a real process: its exit status
    assert result.returncode == 2
    assert "absent.yaml" in result.stderr and "Traceback" not in result.stderr


def test_not_a_mapping(tmp_path):
    (tmp_path / "study.yaml").write_text("- just\n- a list\n")
    result = cli("validate", "study.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "mapping" in result.stderr


def test_binary_task_with_three_classes(tmp_path):
    rows = "\n".join(f"text number {i}\t{i % 3}" for i in range(60))
    (tmp_path / "three.txt").write_text(rows + "\n")
    study = small_study()
    study["tasks"]["imdb"]["path"] = "three.txt"
    write_study(tmp_path, study)
    result = cli("run", "study.yaml", cwd=tmp_path)
    assert_refused(result, ["tasks.imdb", "exactly 2 distinct labels"], tmp_path)


def test_validate_prints_the_plan(tmp_path):
    space = {
        "tasks": {"subsets": {"min_size": 2}},
        "model.hidden_size": {"low": 8, "high": 64, "log": True},
    }
    write_study(tmp_path, small_study(search={"space": space}))
    result = cli("validate", "study.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for needle in (
        "imdb",
        "yelp",
        "amazon",
        "700",
        "150",
        "model.hidden_size",
        "8 .. 64 (log)",
        "4 task",
    ):
        assert needle in result.stdout, needle
    assert not (tmp_path / ".sweeps").exists()


def test_store_uris_expand_environment_variables(monkeypatch, tmp_path):
    study = small_study(storage="postgresql://u:${MTL_TEST_PW}@db:5432/optuna")
    path = write_study(tmp_path, study)
    monkeypatch.delenv("MTL_TEST_PW", raising=False)
    with pytest.raises(StudyError, match="storage.*MTL_TEST_PW is not set"):
        load_spec(path)
    monkeypatch.setenv("MTL_TEST_PW", "pw")
    assert load_spec(path).optuna_storage == "postgresql://u:pw@db:5432/optuna"


def test_relative_sqlite_stores_sit_beside_the_study_file(tmp_path):
    # SQLite alone opens `sqlite:///x.db` in whatever folder the command runs in: a study run
    # from two folders became two studies
    (tmp_path / "stores").mkdir()
    study = small_study(storage="sqlite:///stores/o.db?timeout=30", tracking_uri="sqlite:///m.db")
    spec = load_spec(write_study(tmp_path, study))
    assert spec.optuna_storage == f"sqlite:///{tmp_path / 'stores' / 'o.db'}?timeout=30"
    assert spec.tracking == f"sqlite:///{tmp_path / 'm.db'}"
    absolute = small_study(storage=f"sqlite:///{tmp_path}/a.db", tracking_uri="sqlite://")
    spec = load_spec(write_study(tmp_path, absolute))
    assert spec.optuna_storage == f"sqlite:///{tmp_path}/a.db" and spec.tracking == "sqlite://"


def test_default_stores_live_in_the_workdir(tmp_path):
    spec = load_spec(write_study(tmp_path, small_study(workdir="runs")))
    assert spec.tracking == f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    assert spec.optuna_storage == f"sqlite:///{tmp_path / 'runs' / 'optuna.db'}"
    assert spec.embedded


def test_a_password_from_a_variable_is_encoded_and_a_bad_database_url_refused(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("MTL_TEST_PW", "pa/ss@w:rd")  # as ${VAR} writes it: unencoded
    study = small_study(storage="postgresql://u:${MTL_TEST_PW}@db:5432/optuna")
    spec = load_spec(write_study(tmp_path, study))
    assert spec.optuna_storage == "postgresql://u:pa%2Fss%40w%3Ard@db:5432/optuna"
    from sqlalchemy.engine.url import make_url

    assert make_url(spec.optuna_storage).password == "pa/ss@w:rd"  # what the driver is given
    monkeypatch.setenv("MTL_TEST_PW", "a%41b")  # raw text: the driver gets a%41b, not aAb
    again = load_spec(write_study(tmp_path, study)).optuna_storage
    assert make_url(again).password == "a%41b"
    monkeypatch.setenv("MTL_TEST_PW", "${OTHER:-x}")  # a form no shell variable reads
    shell = small_study(storage="postgresql://u:${MTL_TEST_PW:-x}@db:5432/optuna")
    result = cli("validate", str(write_study(tmp_path, shell)), cwd=tmp_path)
    assert result.returncode == 2 and "storage" in result.stderr and "${NAME}" in result.stderr
    folder = small_study(storage="sqlite:///${MTL_TEST_DIR}/run@2.db")  # "@" in a path
    monkeypatch.setenv("MTL_TEST_DIR", str(tmp_path))
    assert load_spec(write_study(tmp_path, folder)).optuna_storage == (
        f"sqlite:///{tmp_path}/run@2.db"
    )
    written = small_study(storage="postgresql://u:pa/ss@w:rd@db:5432/optuna")  # in the file
    result = cli("validate", str(write_study(tmp_path, written)), cwd=tmp_path)
    assert result.returncode == 2 and "storage" in result.stderr
    assert "percent-encoded" in result.stderr
    assert "pa/ss" not in result.stderr and "w:rd" not in result.stderr
    bad_port = small_study(tracking_uri="postgresql://u@db:port/mlflow")
    result = cli("validate", str(write_study(tmp_path, bad_port)), cwd=tmp_path)
    assert result.returncode == 2 and "tracking_uri" in result.stderr
