"""The Python API: a study from its file or a mapping, checked, run and read back, as the
``sweeps`` command does it, for notebooks and scripts::

    from sweeps import Study

    study = Study.from_yaml("examples/sentiment/study.yaml")
    study.validate()             # every problem at once, before anything is written
    study.run(trials=8)          # creates or resumes the study
    table = study.results()      # pandas: a row per trial, confirm and baseline run
    winner = study.best()        # chosen on validation; its test figures are reported only
    model = study.model()        # the winner's trained model: model.predict(frame)

Bad input raises ``sweeps.StudyError`` (the command line's exit 2), its ``problems`` naming
each field, file and line; nothing is written before a study passes ``validate``.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweeps.errors import StudyError
from sweeps.schema import StudySpec
from sweeps.spec import check_device, check_trunk, check_writable, load_spec, spec_from_mapping


class Study:
    """One study of ``study.yaml``'s schema. ``Study(mapping, folder=...)`` takes the file's
    content as a dict, its relative paths anchored to ``folder`` (default: the current one)."""

    def __init__(self, spec: Mapping[str, Any] | StudySpec, folder: str | Path | None = None):
        self.spec = spec if isinstance(spec, StudySpec) else spec_from_mapping(spec, folder)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Study:
        return cls(load_spec(path))

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        return (
            f"Study({self.name!r}, tasks={self.spec.task_names}, workdir={self.spec.workdir_path})"
        )

    def validate(self) -> Study:
        """Check what ``sweeps validate`` checks (the data files, their columns and labels, the
        splits, the workdir and the device); raise ``StudyError`` with every problem."""
        from sweeps.study_data import load_study_data  # (pandas: only when data is read)

        problems = check_writable(self.spec) + check_device(self.spec) + check_trunk(self.spec)
        if problems:
            raise StudyError(problems)
        load_study_data(self.spec)
        return self

    def run(
        self,
        trials: int | None = None,
        workers: int = 1,
        timeout: float | None = None,
        progress: bool = False,
    ) -> Any:
        """Create or resume the study and run trials until it has ``trials`` finished ones
        (default ``search.n_trials``), with ``workers - 1`` helper processes on this machine
        (which need the study as a file: ``from_yaml``). When the study is complete, its
        verdict and dashboard are written. Returns the run's summary (``finished``,
        ``best_number``, ``best_value``, ``report``, ``dashboard``)."""
        from sweeps.interrupts import stop_on_signals  # (as above: heavy parts load on use)
        from sweeps.local_run import run_here  # (as above)
        from sweeps.pages import write_dashboard  # (as above)
        from sweeps.progress import reporter_for  # (as above)

        if workers < 1:
            raise StudyError(f"workers: {workers}; at least 1")
        if workers > 1 and not self.spec.source.is_file():
            raise StudyError(
                "workers: helper processes read the study from its file; use Study.from_yaml"
            )
        self.validate()
        with stop_on_signals():
            summary = run_here(
                self.spec, self.spec.source, trials, workers, timeout, reporter_for(not progress)
            )
        if summary.closed:
            summary.dashboard = write_dashboard(self.spec, summary, _warn)
        return summary

    def status(self, rows: int = 0) -> str:
        """What ``sweeps status`` prints (every trial unless ``rows``), as text."""
        from rich.console import Console  # (as above)

        from sweeps.status import print_status  # (as above)

        out = io.StringIO()
        print_status(self.spec, Console(file=out, width=200, markup=False, emoji=False), rows)
        return out.getvalue()

    def results(self) -> Any:
        """A pandas frame, a row per trial, confirm and baseline run; see ``sweeps.results``
        for its columns (split-explicit names: ``valid/delta_m``, ``test/delta/TASK``)."""
        from sweeps import record  # (mlflow loads only when the record is read)
        from sweeps.results import results_frame  # (as above)

        runs = record.study_search(self.spec, record.where(not_kind=record.STUDY_RUN))
        return results_frame(runs)

    def report(self) -> Path:
        """Write the verdict (``<workdir>/report.md``, also on the study run) and return its
        path; ``StudyError`` before the study has a complete trial."""
        from sweeps.report import write_report  # (as above)

        return write_report(self.spec)

    def dashboard(self, out: str | Path | None = None) -> Path:
        """Write the dashboard page (``<workdir>/dashboard.html``, or the file ``out``)."""
        from sweeps.pages import write_dashboard  # (plotly: only when a page is built)

        problems: list[str] = []
        path = write_dashboard(self.spec, None, problems.append, Path(out) if out else None)
        if path is None:
            raise StudyError(problems)
        return path

    def best(self, split: str = "valid") -> Any:
        """The winner, chosen on validation (the confirmed one where ``search.confirm`` ran):
        a ``Winner`` with its trial ``number``, ``tasks``, ``settings``, ``valid_delta_m``
        and ``test_delta_m`` (each an ``Estimate``: value, seeds, ci95). A winner is never
        picked on test, so ``split`` takes ``valid`` only; None before a trial completes."""
        if split != "valid":
            raise StudyError(
                f"split: {split!r}; the best is chosen on validation only (picking on test "
                "would make the test figures a second validation set); read the winner's test "
                "figures from best().test_delta_m"
            )
        from sweeps.verdict import pick_winner, study_runs  # (as above)

        runs = study_runs(self.spec)
        return pick_winner(runs["trial"], runs["confirm"])

    def model(self, trial: str | int = "best", baseline: str | None = None) -> Any:
        """A recorded model (``mtl_core.saved_model.TrainedModel``: ``predict(frame)``,
        ``tasks``, ``input_columns()``): the winner's (``best``), trial N's, or with
        ``baseline`` the single-task baseline of that task that the run was compared with."""
        from sweeps.models import find_model_run, load_model  # (torch loads with a model)

        return load_model(self.spec, find_model_run(self.spec, str(trial), baseline))


def _warn(text: str) -> None:
    print(text, file=sys.stderr)
