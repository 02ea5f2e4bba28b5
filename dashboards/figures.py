"""The analysis figures of the dashboard, each from the MLflow record alone (``StudyRecord``);
each returns None when the study holds nothing it can show (the page then says so)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboards.load import StudyRecord
from sweeps import record as names
from sweeps.transfer_matrix import pair_matrix

DIVERGING = [[0.0, "#d62728"], [0.5, "#f7f7f7"], [1.0, "#2ca02c"]]
LAYOUT = {"margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "height": 420}


def fig_transfer_matrix(record: StudyRecord) -> go.Figure | None:
    """Δ of the row's task trained with the column's alone (pair trials and transfer runs)."""
    if len(record.tasks) < 2:
        return None
    matrix = pair_matrix(record.tasks, record.pair_runs)
    if not matrix.covered:
        return None
    z = [[matrix.mean(i, j) for j in record.tasks] for i in record.tasks]
    tried: dict[frozenset, list[str]] = {}  # a pair -> why its trials did not finish
    for run in record.trial_runs:
        pair = names.tasks_of(run)
        if len(pair) == 2:
            reasons = tried.setdefault(frozenset(pair), [])
            if run.data.tags.get(names.STATE) in ("PRUNED", "FAIL"):
                reasons.append(run.data.tags.get(names.ERROR, "pruned"))
    text, hover = [], []
    for i in record.tasks:
        row_text, row_hover = [], []
        for j in record.tasks:
            value, pair = matrix.mean(i, j), frozenset((i, j))
            if i == j:
                cell, why = "", ""
            elif value is not None:  # how many runs stand behind the mean
                cell, why = f"{value:+.2f} (n={matrix.count(i, j)})", ""
            elif tried.get(pair):  # tried, but no run of the pair finished
                cell, why = "only pruned", "; ".join(dict.fromkeys(tried[pair]))[:300]
            else:
                cell, why = "not tried", ""
            row_text.append(cell)
            row_hover.append(why)
        text.append(row_text)
        hover.append(row_hover)
    figure = _heatmap(
        z,
        record.tasks,
        record.tasks,
        text,
        "Pair transfer matrix: Δ % of the row's task trained with the column's alone "
        "(n = runs behind the mean)",
        "with",
        "task",
    )
    figure.data[0].update(
        customdata=hover, hovertemplate="%{y} with %{x}: %{text}<br>%{customdata}<extra></extra>"
    )
    return figure


def fig_affinity(record: StudyRecord) -> go.Figure | None:
    """Mean final-epoch inter-task affinity Z(row→column) over the trials that measured it."""
    tasks = record.tasks
    columns = {(i, j): names.affinity(i, j) for i in tasks for j in tasks}
    df = record.complete
    if not any(c in df for c in columns.values()):
        return None
    z = [
        [
            float(df[columns[i, j]].mean())
            if columns[i, j] in df and df[columns[i, j]].notna().any()
            else None
            for j in tasks
        ]
        for i in tasks
    ]
    text = [
        ["" if v is None else f"{v:.2e}" + (" (self)" if i == j else "") for j, v in enumerate(row)]
        for i, row in enumerate(z)
    ]
    # the colours from the pairs: a step on a task's own loss lowers it 10-100 times more
    # than another's (2e-5 against 1e-6), and a scale set by the diagonal left every pair white
    pairs = [v for i, row in enumerate(z) for j, v in enumerate(row) if i != j and v is not None]
    return _heatmap(
        z, tasks, tasks, text, "Inter-task affinity Z(row → column): a step on the row's loss "
        "lowers the column's (colours from the pairs; the diagonal, a task on itself, saturates)",
        "measured task", "task stepped on", bound=max(map(abs, pairs), default=None),
    )  # fmt: skip


def fig_pareto(record: StudyRecord) -> go.Figure | None:
    """Each task's Δ for every complete trial; the Pareto front (``mtl.pareto``) highlighted."""
    df = record.complete
    if "pareto" not in df or not df["pareto"].any():
        return None
    cols = [names.delta(t) for t in record.tasks if names.delta(t) in df]
    df = df.dropna(subset=cols)
    if len(cols) == 2:
        figure = go.Figure()
        for front, colour, name in (
            (False, "#bbbbbb", "other trials"),
            (True, "#1f77b4", "Pareto front"),
        ):
            part = df[df["pareto"] == front].sort_values(cols[0])
            figure.add_scatter(
                x=part[cols[0]], y=part[cols[1]], mode="markers+lines" if front else "markers",
                name=name, marker={"color": colour, "size": 10},
                text=[f"trial {n}" for n in part["number"]],
                hovertemplate="%{text}<br>%{x:+.2f}, %{y:+.2f}<extra></extra>",
            )  # fmt: skip
        figure.update_layout(
            title="Pareto front across tasks (chosen on validation; shown in test Δ %)",
            xaxis_title=f"Δ {cols[0][6:]} %", yaxis_title=f"Δ {cols[1][6:]} %", **LAYOUT,
        )  # fmt: skip
        return figure
    dims = [{"label": f"Δ {c[6:]} %", "values": df[c]} for c in cols]
    figure = go.Figure(
        go.Parcoords(
            line={
                "color": df["pareto"].astype(int),
                "colorscale": [[0, "#bbbbbb"], [1, "#1f77b4"]],
            },
            dimensions=dims,
        )
    )
    figure.update_layout(title="Pareto front across tasks (blue: on the front)", **LAYOUT)
    return figure


def fig_schedule_weighting(record: StudyRecord) -> go.Figure | None:
    """Mean test Δm of the complete trials per schedule × weighting, each cell saying how many
    trials stand behind it and how many of its kind were pruned or failed (a mean over the
    survivors alone flattered a cell whose trials were mostly pruned)."""
    a, b = "param:training.schedule", "param:training.weighting"
    trials = record.trials
    df = record.complete.dropna(subset=["delta_m"])
    if df.empty or a not in df or b not in df:
        return None
    if df[a].nunique() * df[b].nunique() < 2:
        return None
    lost = trials[trials["state"].isin(["PRUNED", "FAIL"])] if a in trials and b in trials else None
    rows = sorted(set(df[a].dropna()) | (set(lost[a].dropna()) if lost is not None else set()))
    columns = sorted(set(df[b].dropna()) | (set(lost[b].dropna()) if lost is not None else set()))
    z, text = [], []
    for schedule in rows:
        z_row, text_row = [], []
        for weighting in columns:
            cell = df[(df[a] == schedule) & (df[b] == weighting)]["delta_m"]
            gone = (
                0 if lost is None else int(((lost[a] == schedule) & (lost[b] == weighting)).sum())
            )
            also = f", {gone} pruned or failed" if gone else ""
            if len(cell):
                z_row.append(float(cell.mean()))
                text_row.append(f"{cell.mean():+.2f} (n={len(cell)}{also})")
            else:
                z_row.append(None)
                text_row.append(f"only pruned or failed ({gone})" if gone else "")
        z.append(z_row)
        text.append(text_row)
    return _heatmap(
        z, columns, rows, text,
        "Mean test Δm % of the complete trials by schedule × weighting (n = complete trials; "
        "pruned and failed ones counted apart)", "weighting", "schedule",
    )  # fmt: skip


def fig_hidden_size(record: StudyRecord) -> go.Figure | None:
    df = record.complete.dropna(subset=["delta_m"])
    column = "param:model.hidden_size"
    if df.empty or column not in df:
        return None
    x = pd.to_numeric(df[column], errors="coerce")
    if x.nunique() < 2:
        return None
    figure = go.Figure()
    figure.add_scatter(
        x=x, y=df["delta_m"], mode="markers", name="trials",
        text=[f"trial {n}: {t}" for n, t in zip(df["number"], df["tasks"], strict=True)],
        hovertemplate="%{text}<br>hidden %{x}<br>Δm %{y:+.2f}%<extra></extra>",
    )  # fmt: skip
    slope, intercept = np.polyfit(np.log(x), df["delta_m"], 1)  # trend on a log scale
    grid = np.geomspace(x.min(), x.max(), 50)
    figure.add_scatter(
        x=grid,
        y=slope * np.log(grid) + intercept,
        mode="lines",
        name="trend (least squares on log size)",
    )
    figure.update_layout(
        title="Test Δm % by hidden size", xaxis={"type": "log", "title": "model.hidden_size"},
        yaxis_title="Δm %", **LAYOUT,
    )  # fmt: skip
    return figure


def fig_history(record: StudyRecord) -> go.Figure | None:
    df = record.complete.dropna(subset=["valid_delta_m"]).sort_values("number")
    if df.empty:
        return None
    figure = go.Figure()
    figure.add_scatter(x=df["number"], y=df["valid_delta_m"], mode="markers", name="trial")
    figure.add_scatter(
        x=df["number"],
        y=df["valid_delta_m"].cummax(),
        mode="lines",
        name="best so far",
        line={"shape": "hv"},
    )
    figure.update_layout(
        title="Optimisation history: validation Δm % (the objective)",
        xaxis_title="trial", yaxis_title="validation Δm %", **LAYOUT,
    )  # fmt: skip
    return figure


IMPORTANCE_MIN_TRIALS, IMPORTANCE_PER_SETTING = 10, 4


def importance_trials_needed(settings: int) -> int:
    """Complete trials before importances are drawn: fANOVA from 8 trials ranked schedule
    first (0.43) where optuna-dashboard's estimate on the same study put width first (0.80)."""
    return max(IMPORTANCE_MIN_TRIALS, IMPORTANCE_PER_SETTING * settings)


def fig_importances(record: StudyRecord) -> go.Figure | str | None:
    """Optuna's parameter importances (fANOVA, 16 trees of depth 16 rather than 64 and 64: a
    1,000-trial study builds in seconds), on a study rebuilt in memory from MLflow; with too
    few complete trials, a note of how many more it needs."""
    # here, not at the top: optuna loads only when this runs
    import optuna

    df = record.complete.dropna(subset=["valid_delta_m"])
    params = [c for c in df if c.startswith("param:") and df[c].nunique() > 1]
    if not params:
        return None
    needed = importance_trials_needed(len(params))
    if len(df) < needed:
        return (
            f"Parameter importances: {len(df)} complete trials over {len(params)} searched "
            f"settings; they are drawn from {needed} ({needed - len(df)} more): from fewer, "
            "two estimators on one study ranked the settings in opposite orders."
        )
    distributions = {}
    for c in params:
        numeric = pd.to_numeric(df[c], errors="coerce")
        if numeric.notna().all():
            distributions[c[6:]] = optuna.distributions.FloatDistribution(
                float(numeric.min()), float(numeric.max())
            )
        else:
            distributions[c[6:]] = optuna.distributions.CategoricalDistribution(
                sorted(df[c].astype(str).unique())
            )
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize")
    for _, row in df.iterrows():
        values = {
            name: (
                float(row["param:" + name])
                if isinstance(d, optuna.distributions.FloatDistribution)
                else str(row["param:" + name])
            )
            for name, d in distributions.items()
        }
        study.add_trial(
            optuna.trial.create_trial(
                params=values, distributions=distributions, value=float(row["valid_delta_m"])
            )
        )
    try:
        importances = optuna.importance.get_param_importances(
            study,
            evaluator=optuna.importance.FanovaImportanceEvaluator(n_trees=16, max_depth=16, seed=0),
        )
    except (RuntimeError, ValueError):
        return None
    settings = list(importances)[::-1]
    figure = go.Figure(
        go.Bar(
            x=[importances[n] for n in settings],
            y=settings,
            orientation="h",
            marker={"color": "#1f77b4"},
        )
    )
    figure.update_layout(
        title=f"Parameter importances for validation Δm (Optuna, fANOVA, {len(df)} complete "
        "trials): an estimate; other estimators may order close settings differently",
        xaxis_title="importance", **{**LAYOUT, "margin": {"l": 200, "r": 20, "t": 50, "b": 50}},
    )  # fmt: skip
    return figure


def fig_learning_curves(record: StudyRecord, top: int = 3) -> go.Figure | None:
    """Validation metric per epoch for the best trials by validation Δm, against their
    baselines: one panel per task (each its own metric), one colour per trial, the task's
    baseline dotted in grey (15 lines in 3 colours, one per task, could not be told apart)."""
    from plotly.subplots import make_subplots  # here: only this figure has panels

    from sweeps.sqlite_stores import mlflow_client  # here: mlflow loads only when this runs

    df = (
        record.complete.dropna(subset=["valid_delta_m"])
        .sort_values(["valid_delta_m", "number"], ascending=[False, True])
        .head(top)
    )
    if df.empty or not record.tracking_uri:
        return None
    client = mlflow_client(record.tracking_uri)
    palette = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
    curves: dict[str, list] = {}  # task -> [(trial, colour, metric, history)]
    baselines: dict[str, dict[str, list]] = {}  # task -> baseline run -> history, each once
    for rank, (_, row) in enumerate(df.iterrows()):
        run = client.get_run(row["run_id"])
        for task in row["tasks"].split(","):
            metric = next(iter(names.baseline_metrics(run.data.metrics, task)), None)
            if metric is None:
                continue
            history = client.get_metric_history(row["run_id"], names.valid(task, metric))
            curves.setdefault(task, []).append((row["number"], palette[rank % 7], metric, history))
            base = (
                row["baseline_runs"].get(task) if isinstance(row["baseline_runs"], dict) else None
            )
            if base and base not in baselines.setdefault(task, {}):  # trials may share one
                baselines[task][base] = client.get_metric_history(base, names.valid(task, metric))
    if not curves:
        return None
    tasks = sorted(curves)
    figure = make_subplots(
        rows=1, cols=len(tasks), subplot_titles=[
            f"{t}: validation {curves[t][0][2]}" for t in tasks
        ], horizontal_spacing=0.06,
    )  # fmt: skip
    for col, task in enumerate(tasks, start=1):
        for number, colour, _, history in curves[task]:
            figure.add_scatter(
                x=[m.step for m in history], y=[m.value for m in history], mode="lines+markers",
                name=f"trial {number}", line={"color": colour}, legendgroup=f"trial {number}",
                showlegend=col == 1, row=1, col=col,
            )  # fmt: skip
        for k, history in enumerate(baselines.get(task, {}).values()):
            figure.add_scatter(
                x=[m.step for m in history], y=[m.value for m in history], mode="lines",
                name="single-task baseline", line={"color": "#7f7f7f", "dash": "dot"},
                legendgroup="baseline", showlegend=col == 1 and k == 0, row=1, col=col,
            )  # fmt: skip
        figure.update_xaxes(title_text="epoch", row=1, col=col)
    figure.update_layout(
        title=f"Learning curves of the {len(df)} best trials by validation Δm (one colour per "
        "trial; dotted grey: the task's single-task baseline)",
        **{**LAYOUT, "height": 460},
    )  # fmt: skip
    return figure


def fig_seed_spread(record: StudyRecord) -> go.Figure | None:
    """Each task's Δ with its standard deviation across seeds, for trials run with several."""
    df = record.complete
    cols = [t for t in record.tasks if names.delta(t) + names.STD in df]
    if not cols:
        return None
    figure = go.Figure()
    for task in cols:
        part = df.dropna(subset=[names.delta(task) + names.STD])
        figure.add_scatter(
            x=[f"trial {n}" for n in part["number"]], y=part[names.delta(task)], mode="markers",
            name=task, error_y={"type": "data", "array": part[names.delta(task) + names.STD], "visible": True},
        )  # fmt: skip
    figure.update_layout(
        title="Spread across seeds: mean Δ % ± one standard deviation", yaxis_title="Δ %", **LAYOUT
    )
    return figure


def _heatmap(z, x, y, text, title, xtitle, ytitle, bound: float | None = None) -> go.Figure:
    """A diverging heatmap centred on 0; ``bound`` sets the colour range (default: the largest
    magnitude in ``z``)."""
    if bound is None or not math.isfinite(bound) or bound <= 0:
        finite = [abs(v) for row in z for v in row if v is not None and math.isfinite(v)]
        bound = max(finite) if finite and max(finite) > 0 else 1.0
    figure = go.Figure(
        go.Heatmap(
            z=z, x=x, y=y, text=text, texttemplate="%{text}", colorscale=DIVERGING,
            zmin=-bound, zmax=bound, hoverongaps=False,
        )
    )  # fmt: skip
    figure.update_layout(title=title, xaxis_title=xtitle, yaxis_title=ytitle, **LAYOUT)
    figure.update_yaxes(autorange="reversed")
    return figure
