"""Issue 7: property-based fuzzing of study files and data files (hypothesis). Every case ends
in exit 0, or exit 2 with a message; never a traceback, never exit 1, and a refused `run`
writes nothing. The budget is bounded (MTL_FUZZ_EXAMPLES, default 40 per property)."""

from __future__ import annotations

import copy
import os
import string
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sweeps.cli import app
from tests.helpers import SENTIMENT, small_study

EXAMPLES = int(os.environ.get("MTL_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run: CI stays reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RUNNER = CliRunner()

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(string.printable, max_size=12)
    | st.sampled_from(["joint", "mmoe", "pcgrad", "grid", "binary", "f1", "../nope.csv", "${X}"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(tree, prefix=()):
    yield prefix
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _paths(value, (*prefix, key))


def _base_study() -> dict:
    study = small_study("fuzz", training={"epochs": 1})
    study["tasks"] = {k: v for k, v in study["tasks"].items() if k in ("imdb", "yelp")}
    study["search"]["space"] = {"model.hidden_size": {"low": 8, "high": 32}}
    return study


def _invoke(folder: Path, study_text: str, command: str = "validate"):
    path = folder / "study.yaml"
    path.write_text(study_text, encoding="utf-8", errors="surrogateescape")
    return RUNNER.invoke(app, [command, str(path)], catch_exceptions=True)


def _check(result) -> None:
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert "error:" in result.output


@FUZZ
@given(data=st.data())
def test_mutated_study_files_are_accepted_or_refused_cleanly(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("study")
    study = _base_study()
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(list(_paths(study))[1:]))
        parent = study
        for key in where[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete":
            parent.pop(where[-1], None)
        elif action == "add" and isinstance(parent.get(where[-1]), dict):
            parent[where[-1]][
                data.draw(st.text(string.ascii_lowercase + "._", min_size=1, max_size=10))
            ] = data.draw(values)
        else:
            parent[where[-1]] = data.draw(values)
    result = _invoke(folder, yaml.safe_dump(study, sort_keys=False, allow_unicode=True))
    _check(result)
    if result.exit_code == 2:  # and a refused run writes nothing
        refused = _invoke(folder, (folder / "study.yaml").read_text(), "run")
        assert refused.exit_code == 2, refused.output
        assert not any(folder.glob("**/*.db")), list(folder.glob("**/*"))


@FUZZ
@given(cut=st.integers(0, 4000), noise=st.binary(max_size=40), at=st.integers(0, 4000))
def test_damaged_study_text_is_refused_with_a_message(tmp_path_factory, cut, noise, at):
    folder = tmp_path_factory.mktemp("text")
    text = yaml.safe_dump(_base_study(), sort_keys=False)
    damaged = (
        text[:cut] + noise.decode("utf-8", errors="surrogateescape") + text[min(at, len(text)) :]
    )
    _check(_invoke(folder, damaged))


def _table(rows: list[tuple[str, str]]) -> str:
    return "text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows)


source = [
    tuple(parts)
    for line in (SENTIMENT / "imdb_labelled.txt").read_text(encoding="utf-8").splitlines()[:300]
    if len(parts := line.rsplit("\t", 1)) == 2
]


@FUZZ
@given(data=st.data())
def test_damaged_data_files_are_refused_naming_the_file(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("data")
    rows = copy.deepcopy(source)
    for _ in range(data.draw(st.integers(1, 4))):
        if not rows:
            break
        i = data.draw(st.integers(0, len(rows) - 1))
        kind = data.draw(
            st.sampled_from(["label", "label", "text", "text", "drop", "empty_label", "few"])
        )
        if kind == "label":
            rows[i] = (
                rows[i][0],
                data.draw(st.sampled_from(["", "2", "x", "nan", "-1", "1.5", " "])),
            )
        elif kind == "text":
            rows[i] = (
                data.draw(
                    st.text(max_size=30).map(lambda s: s.replace("\n", " ").replace("\t", " "))
                ),
                rows[i][1],
            )
        elif kind == "empty_label":
            rows[i] = (rows[i][0], "")
        elif kind == "drop":
            rows = rows[: max(1, i)]
        else:
            rows = rows[: data.draw(st.integers(0, 5))]
    body = _table(rows)
    if data.draw(st.integers(0, 3)) == 0:  # a file cut short
        cut = data.draw(st.integers(0, len(body)))
        body = body[:cut]
    data_file = folder / "reviews.tsv"
    data_file.write_text(body, encoding="utf-8")
    study = _base_study()
    study["tasks"]["imdb"] = {
        "path": str(data_file),
        "inputs": "text",
        "target": "label",
        "type": "binary",
    }
    result = _invoke(folder, yaml.safe_dump(study, sort_keys=False))
    _check(result)
    if result.exit_code == 2:
        assert "tasks.imdb" in result.output or "reviews.tsv" in result.output, result.output


# issue 19's classes, generated: adversarial names and labels, extreme numbers, odd paths,
# store URLs with odd passwords, duplicate keys and aliases in the YAML text
odd_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from(list("[]/\\'\"`$%{}:@#?&\x00\x07\x1b\n\t ")),
    max_size=40,
) | st.sampled_from(
    ["[/x]", "[bold]x[/bold]", ":smile:", "it's", 'a "b"', "x" * 300, " x ", "..", "."]
)
extreme = st.sampled_from(
    [0, -1, 2**31, 2**32, 2**63, -(2**63), 10**30, 1e308, -1e308, 5e-324, -0.0, float("inf"),
     float("nan"), True, "1e9", "0x10"]
)  # fmt: skip
secrets = st.text("abcXYZ019/@:#?%&+= ", min_size=1, max_size=12).map(lambda s: f"Pw{s}Q7")
URL_FORMS = [
    "postgresql://user:${MTL_FUZZ_PW}@db:5432/optuna",
    "postgresql+psycopg://user:${MTL_FUZZ_PW}@db/optuna?sslmode=require",
    "mysql://user:${MTL_FUZZ_PW}@db/optuna",
    "http://user:${MTL_FUZZ_PW}@mlflow:5000",
]


@FUZZ
@given(data=st.data())
def test_adversarial_names_numbers_paths_and_store_urls(tmp_path_factory, data, monkeypatch):
    folder = tmp_path_factory.mktemp("adversary")
    study = _base_study()
    secret = data.draw(secrets)
    monkeypatch.setenv("MTL_FUZZ_PW", secret)
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(st.sampled_from(["name", "task", "number", "path", "url", "label"]))
        if kind == "name":
            study["name"] = data.draw(odd_text)
        elif kind == "task":
            others = [k for k in study["tasks"] if k != "imdb"]
            if others:
                study["tasks"][data.draw(odd_text)] = study["tasks"].pop(others[0])
        elif kind == "number":
            field = data.draw(st.sampled_from(
                [("seed",), ("training", "epochs"), ("training", "lr"), ("training", "batch_size"),
                 ("model", "hidden_size"), ("search", "n_trials"), ("search", "timeout"),
                 ("training", "weight_decay"), ("search", "store_retry_s")]
            ))  # fmt: skip
            parent = study
            for key in field[:-1]:
                parent = parent.setdefault(key, {})
            parent[field[-1]] = data.draw(extreme)
        elif kind == "path":
            where = data.draw(st.sampled_from(["workdir", "task"]))
            value = data.draw(
                st.sampled_from(
                    ["/dev/null", "/proc/self", "../../..", "~nobody/x", "/", "a" * 300]
                )
                | odd_text
            )
            if where == "workdir":
                study["workdir"] = value
            else:
                study["tasks"]["imdb"]["path"] = value
        elif kind == "url":
            field = data.draw(st.sampled_from(["storage", "tracking_uri"]))
            study[field] = data.draw(st.sampled_from(URL_FORMS))
        else:
            study["tasks"]["imdb"]["label_map"] = {0: data.draw(odd_text), 1: data.draw(odd_text)}
    text = yaml.safe_dump(study, sort_keys=False, allow_unicode=True)
    if data.draw(st.booleans()):  # the YAML's own tricks: a key twice, an alias
        text += data.draw(st.sampled_from(
            ["seed: 1\n", "name: other\n", "x: &a [1, 2]\ny: *a\n", "training: {epochs: 1}\n"]
        ))  # fmt: skip
    result = _invoke(folder, text)
    _check(result)
    assert secret not in result.output, result.output  # a password is never printed
    if result.exit_code == 2:
        refused = _invoke(folder, (folder / "study.yaml").read_text(), "run")
        assert refused.exit_code == 2, refused.output
        assert secret not in refused.output
        assert not any(folder.glob("**/*.db")), list(folder.glob("**/*"))
