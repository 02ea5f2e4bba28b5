"""The dashboard, built from a real MLflow SQLite store that holds runs named as the contract
says: leaderboard, Δ per task with negative transfer marked, offline HTML, empty studies."""

from __future__ import annotations

import re
import time

import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from plotly.offline import get_plotlyjs

from dashboards import build_dashboard, load_trials
from dashboards.page import NEGATIVE

TRIALS = [  # number, state, tasks, delta per task
    (0, "COMPLETE", "imdb,yelp", {"imdb": 2.5, "yelp": 1.5}),
    (1, "COMPLETE", "amazon,imdb", {"amazon": -4.25, "imdb": 3.0}),
    (2, "PRUNED", "amazon,yelp", {}),
    (3, "COMPLETE", "amazon,imdb,yelp", {"amazon": 0.5, "imdb": -1.0, "yelp": 6.0}),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dash")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("dash", artifact_location=(folder / "artifacts").as_uri())
    client.create_experiment("empty", artifact_location=(folder / "artifacts2").as_uri())
    parent = client.create_run(exp, tags={"mtl.kind": "study"}).info.run_id
    now = int(time.time() * 1000)
    for number, state, tasks, deltas in TRIALS:
        tags = {
            "mtl.kind": "trial",
            "mtl.trial_number": str(number),
            "mtl.tasks": tasks,
            "mtl.state": state,
            "mlflow.parentRunId": parent,
        }
        if state == "PRUNED":
            tags["mtl.error"] = "pruned at epoch 2"
        run = client.create_run(exp, tags=tags).info.run_id
        params = [
            Param("tasks", tasks),
            Param("training.schedule", "joint"),
            Param("model.hidden_size", "64"),
        ]
        metrics = [Metric(f"delta/{t}", d, now, 0) for t, d in deltas.items()]
        if deltas:
            metrics += [
                Metric("delta_m", sum(deltas.values()) / len(deltas), now, 0),
                Metric("valid/delta_m", 1.0 + number, now, 2),
            ]
        client.log_batch(run, metrics=metrics, params=params, tags=[RunTag("x", "y")])
        client.set_terminated(run, "FINISHED" if state == "COMPLETE" else "KILLED")
    base = client.create_run(
        exp, tags={"mtl.kind": "baseline", "mtl.task": "imdb", "mtl.baseline_key": "k"}
    )
    client.set_terminated(base.info.run_id)
    return folder, uri


def test_load_trials_reads_the_contract_names(store):
    _, uri = store
    df = load_trials(uri, "dash")
    assert list(df["number"]) == [0, 1, 2, 3]  # baselines and the study run are not trials
    assert list(df["state"]) == ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE"]
    assert df.loc[1, "delta/amazon"] == -4.25
    assert df.loc[3, "delta_m"] == pytest.approx((0.5 - 1.0 + 6.0) / 3)
    assert df.loc[2, "error"] == "pruned at epoch 2"
    assert df.loc[0, "param:training.schedule"] == "joint"


def test_page_is_offline_and_complete(store):
    folder, uri = store
    path = build_dashboard(uri, "dash", folder / "out" / "dashboard.html")
    text = path.read_text()
    assert "<title>mtl-sweeps · dash</title>" in text
    # nothing is loaded from elsewhere: no script src, and plotly.js itself is inside (its only
    # mention of the CDN is the library's own default for geo map data, which no figure uses)
    assert not re.search(r"<script[^>]+src=", text)
    assert get_plotlyjs() in text
    assert text.count("cdn.plot.ly") == get_plotlyjs().count("cdn.plot.ly")
    assert len(text) > 1_000_000
    # Δ per task and the figures these trials allow (pair matrix, history); the other
    # figures say what they miss instead of failing: importances from 3 trials would mislead
    assert text.count('class="plotly-graph-div"') == 3
    assert (
        "Parameter importances: 3 complete trials over 1 searched settings; they are drawn from 10 (7 more)"
        in text
    )
    assert "<table class='leaderboard'>" in text and "sortTable(this)" in text
    assert "Affinity matrix: no trial measured affinities" in text
    for task in ("imdb", "yelp", "amazon"):
        assert task in text
    assert "4 trials (3 complete, 1 pruned)" in text
    # the winner is the validation arg-max (trial 3: valid Δm 4.0), not the test one (trial 0)
    assert "winner, chosen on validation: trial 3 on amazon,imdb,yelp (not confirmed)" in text
    assert "validation Δm +4.00% (1 seed: no interval), test Δm +1.83%" in text
    assert "best trial 0" not in text
    # the leaderboard opens in validation order: trial 3, 1, 0, then the pruned one
    body = text[text.index("<table class='leaderboard'>") :]
    rows = re.findall(r"<tr><td[^>]*>(\d+)</td>", body)
    assert rows[:4] == ["3", "1", "0", "2"]
    # the verdict is at the top, before the leaderboard
    assert text.index("Verdict: study dash") < text.index("<table class='leaderboard'>")
    assert "2 task result(s) with negative transfer" in text
    # the negative Δ is shown and coloured red in the leaderboard
    assert "-4.25" in text and NEGATIVE in text


def test_negative_bars_keep_their_task_colour_and_are_hatched_in_red(store):
    # all-red losses hid which task lost: a loss is its task's colour, hatched, outlined red
    from dashboards.load import load_study
    from dashboards.page import fig_task_deltas

    fig = fig_task_deltas(load_study(store[1], "dash"))
    bar = {}  # (task, trial) -> (fill colour, hatch, outline colour)
    for trace in fig.data:
        for x in trace.x:
            bar[(trace.legendgroup, x)] = (
                trace.marker.color, trace.marker.pattern.shape, trace.marker.line.color
            )  # fmt: skip
    amazon = bar[("amazon", "trial 3")][0]  # Δ +0.5: a gain, plain
    assert bar[("amazon", "trial 3")][1:] == ("", "#333333")
    assert bar[("amazon", "trial 1")] == (amazon, "x", NEGATIVE)  # Δ -4.25, amazon's colour
    imdb = bar[("imdb", "trial 0")][0]
    assert bar[("imdb", "trial 3")] == (imdb, "x", NEGATIVE) and imdb != amazon  # Δ -1.0
    legend = {t.name: t.marker.color for t in fig.data if t.showlegend}
    assert sorted(legend) == ["amazon", "imdb", "yelp"] and NEGATIVE not in legend.values()


def test_empty_and_missing_studies_say_what_is_missing(store):
    folder, uri = store
    empty = build_dashboard(uri, "empty", folder / "empty.html").read_text()
    assert "No trials recorded yet" in empty
    missing = build_dashboard(uri, "nope", folder / "missing.html").read_text()
    assert "No MLflow experiment named" in missing and "sweeps run" in missing


def test_seeded_results_show_intervals_and_tell_real_negatives_from_noise(tmp_path):
    from dashboards.load import load_study
    from dashboards.page import NOISE, fig_leaderboard, fig_task_deltas

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("seeded", artifact_location=(tmp_path / "a").as_uri())
    now = int(time.time() * 1000)
    # (trial, task) -> (Δ mean, 95% half-width, significant)
    cells = {(0, "imdb"): (-3.0, 1.0, -1), (0, "yelp"): (-1.0, 2.5, 0), (1, "imdb"): (2.0, 0.5, 1)}
    for number in (0, 1):
        tags = {"mtl.kind": "trial", "mtl.trial_number": str(number), "mtl.state": "COMPLETE",
                "mtl.tasks": "imdb,yelp" if number == 0 else "imdb"}  # fmt: skip
        run = client.create_run(exp, tags=tags).info.run_id
        metrics = [Metric("delta_m", 0.0, now, 0)]
        for (n, task), (mean, half, sig) in cells.items():
            if n == number:
                metrics += [Metric(f"delta/{task}", mean, now, 0),
                            Metric(f"delta/{task}_ci95", half, now, 0),
                            Metric(f"delta/{task}_significant", sig, now, 0)]  # fmt: skip
        client.log_batch(run, metrics=metrics)
        client.set_terminated(run)
    record = load_study(uri, "seeded")
    colour_of = {}
    for trace in fig_task_deltas(record).data:
        for x, err in zip(trace.x, trace.error_y.array, strict=True):
            colour_of[(trace.legendgroup, x)] = (
                trace.marker.pattern.shape, trace.marker.line.color, err
            )  # fmt: skip
    assert colour_of[("imdb", "trial 0")] == ("x", NEGATIVE, 1.0)  # real negative transfer
    assert colour_of[("yelp", "trial 0")] == (".", NOISE, 2.5)  # within noise
    table = fig_leaderboard(record).data[0]
    texts = [t for column in table.cells.values for t in column]
    assert "-3.00 ±1.00*" in texts and "-1.00 ±2.50" in texts
    page = build_dashboard(uri, "seeded", tmp_path / "d.html").read_text()
    assert (
        "2 task result(s) with negative transfer (1 significant at 95% over seeds, 1 within noise)"
        in page
    )


def test_pair_cells_say_how_many_runs_and_tell_untried_from_only_pruned(store):
    from dataclasses import replace

    from dashboards.figures import fig_transfer_matrix
    from dashboards.load import load_study

    _, uri = store
    record = replace(load_study(uri, "dash"), tasks=["amazon", "imdb", "yelp", "books"])
    heat = fig_transfer_matrix(record).data[0]
    cell = {
        (i, j): heat.text[a][b]
        for a, i in enumerate(record.tasks)
        for b, j in enumerate(record.tasks)
    }
    why = {
        (i, j): heat.customdata[a][b]
        for a, i in enumerate(record.tasks)
        for b, j in enumerate(record.tasks)
    }
    assert cell["imdb", "yelp"] == "+2.50 (n=1)" and cell["amazon", "imdb"] == "-4.25 (n=1)"
    assert cell["amazon", "yelp"] == cell["yelp", "amazon"] == "only pruned"
    assert why["amazon", "yelp"] == "pruned at epoch 2"  # its reason, on hover
    assert (
        cell["books", "imdb"] == cell["imdb", "books"] == "not tried" and why["books", "imdb"] == ""
    )
    assert cell["imdb", "imdb"] == ""


def test_the_leaderboard_says_why_a_trial_was_pruned(store):
    folder, uri = store
    html = build_dashboard(uri, "dash", folder / "why.html").read_text()
    table = html.split("class='leaderboard'", 1)[1].split("</table>", 1)[0]
    assert "<th onclick='sortTable(this)' title='sort'>note</th>" in table
    assert "pruned at epoch 2" in table
