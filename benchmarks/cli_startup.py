"""How fast the light commands answer: `sweeps --help`, `sweeps methods` and `sweeps validate`
against a plain `import torch, mlflow` (what they would cost if they loaded the heavy
libraries). Issue 18's target: each under 1 s of its own on an idle 2-core machine.

    python benchmarks/cli_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "examples" / "sentiment" / "study.yaml"


VALIDATE_NEEDS = (
    "import pandas, pydantic, yaml, sklearn.model_selection, sklearn.feature_extraction.text"
)


def seconds(command: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    help_s = seconds([py, "-m", "sweeps", "--help"], args.repeat)
    methods_s = seconds([py, "-m", "sweeps", "methods"], args.repeat)
    validate_s = seconds([py, "-m", "sweeps", "validate", str(STUDY)], args.repeat)
    heavy_s = seconds([py, "-c", "import torch, mlflow"], args.repeat)
    # what validate cannot do without: reading the files (pandas), splitting the rows and
    # fitting the vocabularies the way training will (scikit-learn), the schema (pydantic)
    floor_s = seconds([py, "-c", VALIDATE_NEEDS], args.repeat)
    print(f"sweeps --help                  {help_s:6.2f} s (median of {args.repeat})")
    print(f"sweeps methods                 {methods_s:6.2f} s")
    print(f"sweeps validate (sentiment)    {validate_s:6.2f} s")
    print(f"python -c 'import torch,mlflow' {heavy_s:5.2f} s")
    print(f"the libraries validate needs   {floor_s:6.2f} s ({VALIDATE_NEEDS})")
    print(f"ratio validate / its libraries {validate_s / floor_s:6.2f}")
    print(f"ratio --help / heavy imports   {help_s / heavy_s:6.2f}")


if __name__ == "__main__":
    main()
