"""Files written whole or not at all (``sweeps predict --out``, ``sweeps export --out``,
``sweeps import-wandb --out``): to a temporary file beside the target, then moved into place,
so a crash or a full disk leaves the old file (or none), never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweeps.errors import StudyError

OUT_FORMATS = (".csv", ".parquet")


def check_out(out: Path, what: str) -> None:
    """Refuse an ``--out`` that is not a .csv / .parquet file in an existing folder."""
    if out.suffix.lower() not in OUT_FORMATS:
        raise StudyError(f"--out: {out.name!r}; {what} are written as .csv or .parquet")
    if not out.parent.is_dir():
        raise StudyError(f"--out: no such folder {out.parent}")
    if out.is_dir():
        raise StudyError(f"--out: {out} is a folder; give a file name")


def write_whole(frame: Any, out: Path) -> None:
    """A table as ``.csv`` or ``.parquet`` (by ``out``'s suffix)."""
    if out.suffix.lower() == ".parquet":
        replace_whole(out, lambda temp: _typed(frame).to_parquet(temp, index=False))
    else:
        replace_whole(out, lambda temp: frame.to_csv(temp, index=False))


def write_text_whole(out: Path, text: str) -> None:
    replace_whole(out, lambda temp: Path(temp).write_text(text, encoding="utf-8"))


def replace_whole(out: Path, write: Callable[[str], Any]) -> None:
    """``write(temp)`` a file beside ``out``, then move it into place (or remove it)."""
    handle, temp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(handle)
    try:
        write(temp)
        os.replace(temp, out)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _typed(frame: Any) -> Any:
    """Parquet holds one type per column: a column mixing numbers and words (a searched
    setting of ``[1000, auto]``) is written as text, its blanks kept blank."""
    out = frame.copy()
    for column in out.columns:
        values = out[column].dropna()
        if out[column].dtype == object and values.map(type).nunique() > 1:
            out[column] = out[column].map(lambda v: None if v is None else str(v))
    return out
