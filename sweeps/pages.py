"""The study's dashboard page, written once the study is complete by ``sweeps run`` and by
``Study.run``, and logged on the study's run (the one place besides the command line that
imports ``dashboards``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweeps.schema import StudySpec


def write_dashboard(
    spec: StudySpec, summary: Any, warn: Callable[[str], None], out: Path | None = None
) -> Path | None:
    """Build ``dashboard.html`` (in the workdir, or ``out``) and log it on the study run;
    a page that cannot be written costs a warning, never the record of the trials."""
    path = out or spec.workdir_path / "dashboard.html"
    try:
        from dashboards import build_dashboard  # (plotly and pandas: only when a page is built)

        build_dashboard(spec.tracking, spec.name, path)
        if summary is not None:
            summary.tracker.log_artifact(summary.parent_run, path)
    except Exception as exc:  # the record of the trials matters more than the page
        warn(f"warning: the dashboard could not be written: {exc}")
        return None
    return path
