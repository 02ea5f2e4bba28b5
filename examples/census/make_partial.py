"""Write the partially labelled copies of the census sample: marital status hidden (written
as ``?``) on 75% of the rows of each file, chosen with a fixed seed; every other field is
kept byte for byte. ``partial.yaml`` trains on them.

    python examples/census/make_partial.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent / "data"
HIDDEN = 0.75
MARITAL = 5  # the column of marital status


def hide(source: Path, target: Path, skip: int, seed: int) -> None:
    lines = source.read_text().splitlines(keepends=True)
    head, rows = lines[:skip], lines[skip:]
    rng = np.random.default_rng(seed)
    hidden = rng.random(len(rows)) < HIDDEN
    out = []
    for line, hide_it in zip(rows, hidden, strict=True):
        if hide_it and line.strip():
            fields = line.split(",")
            fields[MARITAL] = " ?"
            line = ",".join(fields)
        out.append(line)
    target.write_text("".join(head + out))


if __name__ == "__main__":
    hide(HERE / "adult_2000.data", HERE / "adult_2000_partial.data", 0, seed=0)
    hide(HERE / "adult_1000.test", HERE / "adult_1000_partial.test", 1, seed=1)
