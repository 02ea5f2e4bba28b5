"""Issue 18: the dashboard's figures do not mislead, checked by their data (what the reader
sees: colour ranges, labels, which line is which), not only that they render."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboards.figures import fig_affinity, fig_learning_curves, fig_schedule_weighting
from dashboards.load import StudyRecord, load_study
from sweeps.spec import load_spec
from tests.helpers import cli, small_study, two_tasks, write_study


def test_affinity_colours_come_from_the_pairs_not_the_diagonal():
    # as measured on the sentiment example: a task on itself 2-3e-5, pairs at most 1e-6
    tasks = ["a", "b", "c"]
    values = {("a", "a"): 3e-5, ("b", "b"): 2e-5, ("c", "c"): 2.5e-5, ("a", "b"): 8e-7,
              ("b", "a"): -4e-7, ("a", "c"): 1e-7, ("c", "a"): -1e-6, ("b", "c"): 2e-7,
              ("c", "b"): 5e-7}  # fmt: skip
    trials = pd.DataFrame(
        [
            {
                "number": 0,
                "state": "COMPLETE",
                **{f"affinity/{i}/{j}": v for (i, j), v in values.items()},
            }
        ]
    )
    figure = fig_affinity(StudyRecord("s", True, trials, tasks))
    heat = figure.data[0]
    assert heat.zmax == pytest.approx(1e-6) and heat.zmin == pytest.approx(-1e-6)
    assert [heat.text[i][i] for i in range(3)] == [
        "3.00e-05 (self)",
        "2.00e-05 (self)",
        "2.50e-05 (self)",
    ]
    assert "(self)" not in heat.text[0][1]
    assert "colours from the pairs" in figure.layout.title.text


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("curves")
    study = two_tasks(small_study("curves", training={"epochs": 3}))
    study["search"]["n_trials"] = 3
    study["search"]["pruner"] = "none"
    path = write_study(folder, study)
    assert cli("run", str(path), "--quiet", cwd=folder).returncode == 0
    spec = load_spec(path)
    return load_study(spec.tracking, spec.name)


def test_learning_curves_give_each_trial_one_colour_and_each_task_a_panel(finished):
    figure = fig_learning_curves(finished, top=3)
    trials = [t for t in figure.data if t.name.startswith("trial ")]
    panels = {t.xaxis for t in trials}
    assert len(panels) == 2  # imdb and yelp, each its own metric and axis
    colour_of: dict[str, set] = {}
    for trace in trials:
        colour_of.setdefault(trace.name, set()).add(trace.line.color)
    assert len(colour_of) == 3 and all(len(c) == 1 for c in colour_of.values())  # one per trial
    assert len({next(iter(c)) for c in colour_of.values()}) == 3  # and no two trials share one
    baselines = [t for t in figure.data if t.name == "single-task baseline"]
    assert baselines and all(t.line.dash == "dot" and t.line.color == "#7f7f7f" for t in baselines)
    # a baseline shared by trials is drawn once per panel, not once per trial
    per_panel = {}
    for trace in baselines:
        per_panel.setdefault(trace.xaxis, []).append(tuple(trace.y))
    assert all(len(set(ys)) == len(ys) for ys in per_panel.values())
    assert sum(t.showlegend is not False for t in baselines) == 1


def test_schedule_by_weighting_cells_count_the_pruned_apart():
    rows = [("joint", "equal", "COMPLETE", 1.0), ("joint", "equal", "COMPLETE", 3.0),
            ("joint", "equal", "PRUNED", None), ("joint", "uw", "PRUNED", None),
            ("joint", "uw", "FAIL", None), ("round_robin", "equal", "COMPLETE", -1.0)]  # fmt: skip
    trials = pd.DataFrame(
        [{"number": n, "state": state, "delta_m": value, "param:training.schedule": schedule,
          "param:training.weighting": weighting}
         for n, (schedule, weighting, state, value) in enumerate(rows)]
    )  # fmt: skip
    heat = fig_schedule_weighting(StudyRecord("s", True, trials, ["a", "b"])).data[0]
    cell = {(y, x): heat.text[i][j] for i, y in enumerate(heat.y) for j, x in enumerate(heat.x)}
    assert cell["joint", "equal"] == "+2.00 (n=2, 1 pruned or failed)"
    assert cell["joint", "uw"] == "only pruned or failed (2)"  # a mean over none is no cell
    assert cell["round_robin", "equal"] == "-1.00 (n=1)" and cell["round_robin", "uw"] == ""
    assert heat.z[list(heat.y).index("joint")][list(heat.x).index("uw")] is None
