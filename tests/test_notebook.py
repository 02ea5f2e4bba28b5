"""The README's notebook (`examples/notebook.ipynb`) runs top to bottom in a real Jupyter
kernel (nbclient), in a scratch folder, and says what it claims: the refusal names its field,
the table has the study's four trials, the winner is the validation arg-max."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.helpers import ROOT


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_the_notebook_runs_and_shows_its_answer(tmp_path: Path):
    (tmp_path / "sentiment").symlink_to(ROOT / "examples" / "sentiment")
    notebook = nbformat.read(ROOT / "examples" / "notebook.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    code = [c for c in notebook.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    assert "training.lr" in _text(code[1]) and "greater than 0" in _text(code[1])
    assert "4 trials; best by validation: trial" in _text(code[2])
    table = _text(code[3])
    assert table.count("trial ") >= 4 and "valid/delta_m" in table and "test/delta_m" in table
    assert "validation Δm" in _text(code[4]) and "1 seed: no interval" in _text(code[4])
    assert "/p/1" in _text(code[5])  # each winning task: its class and probabilities
    assert (tmp_path / ".sweeps-notebook" / "report.md").is_file()
    assert (tmp_path / ".sweeps-notebook" / "dashboard.html").is_file()
