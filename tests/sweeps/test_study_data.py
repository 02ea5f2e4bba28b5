"""sweeps.study_data: bad data is refused before any training: `sweeps validate` and `sweeps run` exit 2
with one message that names the task field, the file, the column and, where one row is at
fault, the row (rows count from 1, the header line not included). Nothing is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import assert_refused, cli, write_study

GOOD = "x,colour,y\n" + "".join(
    f"{i * 0.5},{'red' if i % 3 else 'blue'},{i % 2}\n" for i in range(40)
)


def _rows(text: str, row: int, replacement: str) -> str:
    """The CSV text with data row ``row`` (from 1) replaced."""
    lines = text.splitlines()
    lines[row] = replacement
    return "\n".join(lines) + "\n"


def _task(**overrides) -> dict:
    task = {"path": "table.csv", "inputs": ["x", "colour"], "target": "y", "type": "binary"}
    return {**task, **overrides}


def _study(task: dict) -> dict:
    return {
        "name": "bad",
        "tasks": {"t": task},
        "model": {"hidden_size": 4},
        "training": {"epochs": 1},
        "search": {"n_trials": 1, "pruner": "none"},
    }


# case -> (files to write, task settings, words the message must hold)
CASES: dict[str, tuple[dict[str, str | bytes], dict, list[str]]] = {
    "missing file": ({}, _task(path="gone.csv"), ["tasks.t.path", "gone.csv", "no such file"]),
    "unreadable file": (
        {"table.parquet": b"PAR1 this is not parquet"},
        _task(path="table.parquet"),
        ["tasks.t.path", "table.parquet", "cannot be read as parquet"],
    ),
    "not UTF-8": (
        {"table.csv": "x,colour,y\n1,r\xe9d,0\n".encode("latin-1") + b"\xff\xfe\x00\n"},
        _task(),
        ["tasks.t.path", "table.csv", "cannot be read as csv"],
    ),
    "unknown format": (
        {"table.xlsx": "x"},
        _task(path="table.xlsx"),
        ["tasks.t", "table.xlsx", "unknown format '.xlsx'"],
    ),
    "missing column": (
        {"table.csv": GOOD},
        _task(inputs=["x", "size"]),
        ["tasks.t", "table.csv", "no column 'size'", "columns are"],
    ),
    "empty data set": (
        {"table.csv": "x,colour,y\n"},
        _task(),
        ["tasks.t", "table.csv", "no rows"],
    ),
    "empty file": ({"table.csv": ""}, _task(), ["tasks.t.path", "table.csv", "cannot be read"]),
    "empty label": (
        {"table.csv": _rows(GOOD, 7, "3.0,red,")},
        _task(),
        ["tasks.t", "table.csv", "column 'y'", "empty label", "row 7"],
    ),
    "NaN label": (
        {"table.csv": _rows(GOOD, 12, "5.5,red,NaN")},
        _task(),
        ["tasks.t", "table.csv", "column 'y'", "empty label", "row 12"],
    ),
    "three classes for binary": (
        {"table.csv": _rows(GOOD, 3, "1.0,red,2")},
        _task(),
        ["tasks.t", "table.csv", "column 'y'", "exactly 2 distinct labels", "found 3"],
    ),
    "text for regression": (
        {"table.csv": _rows(GOOD, 9, "4.0,red,lots")},
        _task(type="regression"),
        ["tasks.t", "table.csv", "column 'y'", "row 9", "'lots' is not a number"],
    ),
    "label not in label_map": (
        {"table.csv": GOOD},
        _task(label_map={0: "no"}),
        ["tasks.t", "table.csv", "column 'y'", "label_map does not name", "'1'"],
    ),
    "multilabel not 0 or 1": (
        {
            "table.csv": "x,a,b\n"
            + "".join(f"{i},{i % 2},{2 if i == 4 else 0}\n" for i in range(30))
        },
        _task(inputs="x", target=["a", "b"], type="multilabel", metric="f1"),
        ["tasks.t", "table.csv", "column 'b', row 5", "0 or 1"],
    ),
    "too few rows for the split": (
        {"table.csv": "x,colour,y\n1,red,0\n2,blue,1\n"},
        _task(),
        ["tasks.t", "table.csv", "2 rows are too few", "valid=0.15"],
    ),
    "too few rows for a class": (
        {"table.csv": _rows(GOOD, 5, "2.0,red,rare").replace(",0\n", ",zero\n")},
        _task(type="multiclass"),
        [
            "tasks.t",
            "table.csv",
            "column 'y'",
            "too few rows for class 'rare' (1 row)",
            "label_map",
        ],
    ),
    "non-numeric value in a numeric column": (
        {"table.csv": _rows(GOOD, 21, "ten,red,1")},
        _task(),
        ["tasks.t", "table.csv", "column 'x'", "row 21", "'ten' is not a number", "missing:"],
    ),
    "infinite value in a numeric column": (
        {"table.csv": _rows(GOOD, 4, "inf,red,1")},
        _task(),
        ["tasks.t", "table.csv", "column 'x'", "row 4", "not a number"],
    ),
    "a column with no values": (
        {"table.csv": "x,colour,y\n" + "".join(f",red,{i % 2}\n" for i in range(30))},
        _task(),
        ["tasks.t", "table.csv", "column 'x'", "no values"],
    ),
    "class only in the test file": (
        {"train.csv": GOOD, "test.csv": _rows(GOOD, 2, "1.0,red,7").replace(",1\n", ",0\n")},
        _task(type="multiclass", split={"train": "train.csv", "valid": 0.2, "test": "test.csv"}),
        ["tasks.t", "test.csv", "column 'y'", "class '7' has no training rows"],
    ),
    "bad row in a split file": (
        {"train.csv": GOOD, "valid.csv": _rows(GOOD, 8, "?,red,1"), "test.csv": GOOD},
        _task(split={"train": "train.csv", "valid": "valid.csv", "test": "test.csv"}),
        ["tasks.t", "valid.csv", "column 'x'", "row 8", "(valid split)", "'?'"],
    ),
    "too few labelled rows (partial labels)": (
        {
            "table.csv": "x,colour,y\n"
            + "".join(f"{i},red,{'1' if i in (3, 8) else ''}\n" for i in range(40))
        },
        _task(type="regression", partial_labels=True),
        ["tasks.t", "table.csv", "column 'y'", "too few labelled rows", "every split needs"],
    ),
    "npz without the named array": (
        {"arrays.npz": "npz:images"},
        _task(path="arrays.npz", inputs="pixels", target="label", type="multiclass"),
        ["tasks.t.inputs", "arrays.npz", "no array 'pixels'", "images"],
    ),
    "folder without .npy files": (
        {"arrays/readme.txt": "nothing here"},
        _task(path="arrays/", inputs="images", target="label", type="multiclass"),
        ["tasks.t.path", "arrays", "has none"],
    ),
}


def _write(folder: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "npz:images":
            rng = np.random.default_rng(0)
            np.savez(path, images=rng.random((20, 4, 4)), label=np.arange(20) % 2)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_refuses_bad_data(tmp_path, case):
    files, task, needles = CASES[case]
    _write(tmp_path, files)
    write_study(tmp_path, _study(task))
    assert_refused(cli("validate", "study.yaml", cwd=tmp_path), needles, tmp_path)


@pytest.mark.parametrize("case", ["non-numeric value in a numeric column", "empty label"])
def test_run_refuses_bad_data_before_training(tmp_path, case):
    files, task, needles = CASES[case]
    _write(tmp_path, files)
    write_study(tmp_path, _study(task))
    assert_refused(cli("run", "study.yaml", cwd=tmp_path), needles, tmp_path)


def test_the_good_table_is_valid(tmp_path):
    """The cases above differ from a table that passes only in their one defect."""
    _write(tmp_path, {"table.csv": GOOD})
    write_study(tmp_path, _study(_task()))
    result = cli("validate", "study.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "x [numeric]" in result.stdout and "colour [categorical]" in result.stdout


def test_huge_cells_and_headers_give_bounded_messages(tmp_path):
    """A 100 KB cell gave a 100 KB error line (and, with the old masking, minutes): every line
    is at most 1,000 characters, its field and file kept at the start."""
    rows = [{"x": i, "y": i % 2} for i in range(50)]
    rows[7]["y"] = "Z" * 100_000
    pd.DataFrame(rows).to_csv(tmp_path / "cell.csv", index=False)
    pd.DataFrame([{"x" * 100_000: 1, "y": 0}] * 50).to_csv(tmp_path / "header.csv", index=False)
    for name in ("cell", "header"):
        task = {"path": f"{name}.csv", "inputs": ["x"], "target": "y", "type": "binary"}
        study = {"name": name, "tasks": {"a": task}}
        result = cli("validate", str(write_study(tmp_path, study, f"{name}.yaml")), cwd=tmp_path)
        assert_refused(result, [f"tasks.a: {name}.csv: ", "characters cut"], tmp_path)
        assert max(map(len, result.stderr.splitlines())) <= 1000
