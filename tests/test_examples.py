"""The sentiment example's second study file is valid and runs apart from the first."""

from __future__ import annotations

from sweeps.spec import load_spec
from tests.helpers import ROOT, cli


def test_diagnose_example_is_valid_and_keeps_its_own_stores():
    path = ROOT / "examples" / "sentiment" / "diagnose.yaml"
    result = cli("validate", str(path))
    assert result.returncode == 0, result.stderr
    spec, main = load_spec(path), load_spec(path.with_name("study.yaml"))
    assert spec.workdir_path != main.workdir_path and spec.name != main.name
    assert spec.training.affinity_every and spec.training.diagnostics_every
    assert spec.training.seeds >= 2
