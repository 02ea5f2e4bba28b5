"""A workdir that cannot be written: refused before anything is written, exit 2 with the field.

A read-only folder is made as a read-only bind mount in a mount namespace of the command's
own (``unshare -m``): root, which these tests run as, writes through any file mode, so only
a read-only file system shows what a user meets on a read-only share or a mounted archive."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, small_study, write_study


def _can_unshare() -> str | None:
    try:
        probe = subprocess.run(
            ["unshare", "-m", "sh", "-c", "mount --bind / / 2>&1 || exit 3"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare cannot run here: {exc}"
    return None if probe.returncode == 0 else f"no mount namespace here: {probe.stdout[-200:]}"


REASON = _can_unshare()
needs_mounts = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def _in_read_only(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`sweeps ARGS` in ``folder``, which the command sees read-only."""
    script = (
        f'mount --bind "{folder}" "{folder}" && mount -o remount,ro,bind "{folder}" && exec "$@"'
    )
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", sys.executable, "-m", "sweeps", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@needs_mounts
@pytest.mark.parametrize("workdir_exists", [False, True])
def test_a_read_only_workdir_is_refused_before_anything_is_written(tmp_path, workdir_exists):
    path = write_study(tmp_path, small_study("ro"))
    if workdir_exists:
        (tmp_path / ".sweeps").mkdir()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for command in (["validate", str(path)], ["run", str(path), "--quiet"]):
        result = _in_read_only(tmp_path, *command)
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert "workdir:" in result.stderr and "cannot be written" in result.stderr, result.stderr
        assert str(tmp_path) in result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    # the same study where it can be written: validate passes (the check is not a refusal of all)
    ok = subprocess.run(
        [sys.executable, "-m", "sweeps", "validate", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert ok.returncode == 0, ok.stderr
