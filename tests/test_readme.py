"""The README's Python example runs as written, and its commands name real commands."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_python_example_runs(tmp_path, monkeypatch, capsys):
    section = README.split("## Using mtl_core without sweeps", 1)[1]
    block = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    script = tmp_path / "example.py"
    script.write_text(block)
    monkeypatch.chdir(ROOT)
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "'imdb'" in out and "'yelp'" in out and "f1" in out


def test_first_commands_are_setup_and_tests():
    (first,) = re.findall(r"```bash\n(.*?)```", README, flags=re.S)[:1]
    lines = [line for line in first.splitlines() if line and not line.startswith("#")]
    assert (
        lines[0].startswith("python3 -m venv .venv")
        and "sweeps run examples/sentiment/study.yaml" in lines[0]
    )
    assert lines[1] == ".venv/bin/python -m pytest -q"
    assert lines[1] in (ROOT / ".ci" / "run").read_text()
