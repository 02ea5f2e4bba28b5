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
