"""Read a task's table from disk: csv, tsv/txt (tab-separated), parquet, jsonl.

Tab-separated files are read with quoting off: review sentences hold unbalanced ``"``
characters (the UCI ``imdb_labelled.txt`` loses 227 of its 1,000 rows to quote handling
otherwise). CSV files keep standard quoting, since commas inside fields need it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".parquet": "parquet", ".jsonl": "jsonl"}


class DataError(ValueError):
    """A data file that cannot be read as asked; the message names the file."""


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
) -> pd.DataFrame:
    """Read one table. ``columns`` names the columns when the file has no header row."""
    path = Path(path)
    fmt = format or infer_format(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        if fmt in ("csv", "tsv"):
            frame = pd.read_csv(
                path,
                sep="," if fmt == "csv" else "\t",
                header=0 if header else None,
                quoting=csv.QUOTE_MINIMAL if fmt == "csv" else csv.QUOTE_NONE,
                skip_blank_lines=True,
            )
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
        elif fmt == "jsonl":
            frame = pd.read_json(path, lines=True)
        else:
            raise DataError(f"{path}: unknown format {fmt!r}; use csv, tsv, parquet or jsonl")
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
    return frame


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
