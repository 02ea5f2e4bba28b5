"""sweeps.progress: each line says whose it is and counts the study's finished trials, every
process's (two workers each printed their own [1/4])."""

from __future__ import annotations

import io

from sweeps.progress import LineReporter
from sweeps.runner import run_study
from sweeps.spec import load_spec
from tests.helpers import small_study, two_tasks, write_study


def test_a_workers_line_names_it_and_counts_the_study():
    out = io.StringIO()
    reporter = LineReporter(out)
    reporter.start("s", 5, 8, who="worker 2: ")
    reporter.trial_finished(5, "COMPLETE", 1.5, 2.0, finished=6)  # another worker's trial too
    lines = out.getvalue().splitlines()
    assert lines == [
        "worker 2: study s: 5 of 8 trials finished",
        "worker 2: trial 5: COMPLETE valid Δm +1.50% · best +2.00% (study: 6 of 8 finished)",
    ]


def test_a_run_counts_what_the_study_holds(tmp_path):
    study = two_tasks(small_study("count", training={"epochs": 1}))
    study["search"]["n_trials"] = 1
    spec = load_spec(write_study(tmp_path, study))
    run_study(spec)  # one trial there before this run
    out = io.StringIO()
    run_study(spec, n_trials=3, reporter=LineReporter(out))
    lines = out.getvalue().splitlines()
    assert lines[0] == "study count: 1 of 3 trials finished"
    assert lines[1].endswith("(study: 2 of 3 finished)") and lines[2].endswith(
        "(study: 3 of 3 finished)"
    )
