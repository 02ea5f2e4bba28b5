"""Read a task's table from disk: csv, tsv/txt (tab-separated), parquet, jsonl.

Tab-separated files are read with quoting off: review sentences hold unbalanced ``"``
characters (the UCI ``imdb_labelled.txt`` loses 227 of its 1,000 rows to quote handling
otherwise). CSV files keep standard quoting, since commas inside fields need it, and drop the
spaces after a delimiter (the UCI census files separate fields by ``", "``).

Empty fields are missing values. ``missing`` names more markers (the census files write
``?``); ``skip_rows`` skips lines before the header or first row (``adult.test`` opens with a
banner line).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_core.registry import READERS, Reader

# suffix -> table format, from the registry's readers
FORMATS = {
    suffix: name
    for name, entry in READERS.items()
    if isinstance(entry, Reader) and entry.table
    for suffix in entry.suffixes
}
TABLE_FORMATS = [n for n, e in READERS.items() if isinstance(e, Reader) and e.table]


class DataError(ValueError):
    """Data that cannot be used as asked. ``reason`` says why (naming the file, column and row
    where there is one); the fields say where, for callers that place the error themselves
    (``sweeps`` turns ``task`` and ``split`` into the study field and file): ``task``,
    ``split`` (train, valid or test when the data came as one file per split), ``column``,
    ``row`` (1-based), ``file``. ``str()`` is the reason, after ``task 'NAME': `` when known."""

    def __init__(
        self,
        reason: object,
        *,
        task: str | None = None,
        split: str | None = None,
        column: str | None = None,
        row: int | None = None,
        file: str | None = None,
    ) -> None:
        self.reason = str(reason)
        self.task, self.split, self.column, self.row, self.file = task, split, column, row, file
        super().__init__(self.reason)

    def __str__(self) -> str:
        return f"task {self.task!r}: {self.reason}" if self.task else self.reason

    def within(self, **fields: object) -> DataError:
        """The same error with the fields it lacks filled in (a caller knows the task)."""
        known = {k: getattr(self, k) for k in ("task", "split", "column", "row", "file")}
        merged = {k: v if v is not None else fields.get(k) for k, v in known.items()}
        return DataError(self.reason, **merged)  # type: ignore[arg-type]


def infer_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        allowed = ", ".join(sorted(FORMATS))
        raise DataError(f"{path}: unknown format {suffix!r}; use one of {allowed} or set `format:`")
    return FORMATS[suffix]


def read_table(
    path: str | Path,
    format: str | None = None,
    header: bool = True,
    columns: list[str] | None = None,
    missing: list[str] | None = None,
    skip_rows: int = 0,
) -> pd.DataFrame:
    """Read one table. ``columns`` names the columns when the file has no header row;
    ``missing`` lists extra markers of a missing value."""
    path = Path(path)
    fmt = format or infer_format(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    reader = READERS.get(fmt)
    if not isinstance(reader, Reader) or not reader.table:
        raise DataError(f"{path}: unknown format {fmt!r}; use {', '.join(TABLE_FORMATS)}")
    try:
        frame = reader.load()(path, header=header, skip_rows=skip_rows, missing=missing)
    except DataError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be read as {fmt}: {_first_line(exc)}") from exc
    if columns is not None and not header:
        if len(frame.columns) != len(columns):
            raise DataError(
                f"{path}: has {len(frame.columns)} columns but `columns` names {len(columns)}"
            )
        frame.columns = list(columns)
    frame.columns = [str(c) for c in frame.columns]
    _refuse_duplicates(path, list(frame.columns))
    return frame


def _refuse_duplicates(path: Path, names: list[str]) -> None:
    """Two columns of one name: which one a task reads would be a guess (pandas renames the
    second of a CSV header to ``name.1``; a study reading ``name`` got the first silently)."""
    seen: set[str] = set()
    twice = [n for n in names if n in seen or seen.add(n)]
    if twice:
        shown = ", ".join(repr(n[:80]) for n in dict.fromkeys(twice))
        raise DataError(f"{path}: column names given more than once: {shown}; rename them")


def read_csv(path: Path, *, header: bool, skip_rows: int, missing: list[str] | None):
    return _read_text(path, ",", csv.QUOTE_MINIMAL, header, skip_rows, missing)


def read_tsv(path: Path, *, header: bool, skip_rows: int, missing: list[str] | None):
    return _read_text(path, "\t", csv.QUOTE_NONE, header, skip_rows, missing)


def _read_text(path, sep, quoting, header, skip_rows, missing) -> pd.DataFrame:
    if header:  # the header as written: pandas renames a repeated name before we see it
        first = pd.read_csv(
            path, sep=sep, header=None, nrows=1, quoting=quoting, dtype=str,
            skipinitialspace=sep == ",", skiprows=skip_rows or None, keep_default_na=False,
        )  # fmt: skip
        _refuse_duplicates(path, [str(c) for c in first.iloc[0]] if len(first) else [])
    return pd.read_csv(
        path,
        sep=sep,
        header=0 if header else None,
        quoting=quoting,
        skip_blank_lines=True,
        skipinitialspace=sep == ",",
        skiprows=skip_rows or None,
        na_values=missing or None,
    )


def read_parquet(path: Path, *, header: bool, skip_rows: int, missing: list[str] | None):
    return _mark_missing(pd.read_parquet(path), missing)


def read_jsonl(path: Path, *, header: bool, skip_rows: int, missing: list[str] | None):
    return _mark_missing(pd.read_json(path, lines=True), missing)


def _mark_missing(frame: pd.DataFrame, missing: list[str] | None) -> pd.DataFrame:
    return frame.replace(list(missing), np.nan) if missing else frame


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Named arrays: an ``.npz`` file, or a folder of ``.npy`` files (each array named by its
    file name without ``.npy``). Read without pickle: object arrays are refused."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise DataError(f"{path}: a folder of arrays holds .npy files, and this one has none")
        out = {}
        for file in files:
            try:
                out[file.stem] = np.load(file, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DataError(f"{file}: cannot be read as .npy: {_first_line(exc)}") from exc
        return out
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder")
    if path.suffix.lower() == ".npy":
        raise DataError(
            f"{path}: a .npy file holds one array; put the inputs and the targets as .npy "
            "files in one folder and give the folder as `path` (`inputs` and `target` name "
            "the files without .npy)"
        )
    try:
        with np.load(path, allow_pickle=False) as found:
            return {k: found[k] for k in found.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read as .npz: {_first_line(exc)}") from exc
