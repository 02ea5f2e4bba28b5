"""The study's comparison page: Plotly figures from MLflow's record, in one HTML file that
opens offline (plotly.js is embedded once, never loaded from a CDN)."""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from dashboards import figures
from dashboards.load import StudyRecord, load_study
from sweeps import record as names
from sweeps.report import build_report
from sweeps.verdict import best_by_validation, pick_winner, share_text

NEGATIVE, POSITIVE, NEUTRAL = "#d62728", "#2ca02c", "#444444"
NOISE = "#e8a5a5"  # a loss whose 95% interval over seeds holds zero
SHOWN_PARAMS = ("training.schedule", "training.weighting", "model.hidden_size", "training.lr")


def build_dashboard(
    tracking_uri: str, experiment_name: str, out_path: str | Path, refresh_s: int | None = None
) -> Path:
    """Write the dashboard of one study to ``out_path`` (atomically) and return the path."""
    record = load_study(tracking_uri, experiment_name)
    page = render(record, refresh_s)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".dashboard-", suffix=".html", dir=out.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(page)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; a dashboard is for reading
    os.replace(tmp, out)
    return out


MISSING = {
    "fig_transfer_matrix": "Pair transfer matrix: no run trained exactly two tasks yet "
    "(run `sweeps transfer STUDY.yaml`).",
    "fig_affinity": "Affinity matrix: no trial measured affinities "
    "(set `training.affinity_every`, e.g. 10).",
    "fig_pareto": "Pareto front: not a multi-objective study (`search.objective: per_task`).",
    "fig_schedule_weighting": "Schedule × weighting: the study did not vary them.",
    "fig_hidden_size": "Hidden size: the study did not vary it.",
    "fig_history": "Optimisation history: no complete trial with a validation Δm yet.",
    "fig_importances": "Parameter importances: the study searched no setting.",
    "fig_learning_curves": "Learning curves: no complete trial with recorded curves.",
    "fig_seed_spread": "Spread across seeds: every trial ran one seed (`training.seeds`).",
}


def render(record: StudyRecord, refresh_s: int | None = None) -> str:
    """The page. ``refresh_s``: reload itself that often (for ``sweeps dashboard --serve``)."""
    sections = [_header(record)]
    if record.found and not record.complete.empty:
        transfer = [r for r in record.pair_runs if names.kind_of(r) == names.TRANSFER]
        report = build_report(
            record.name, record.tasks, record.trial_runs, record.confirm_runs, transfer
        )
        if report is not None:
            sections.append(report.html())
    complete = record.complete
    if not record.found:
        sections.append(
            _note(f"No MLflow experiment named {record.name!r} yet: run `sweeps run` first.")
        )
    elif record.trials.empty:
        sections.append(_note("No trials recorded yet."))
    else:
        if complete.empty:
            sections.append(
                _note("No completed trials yet: the pruned and failed ones are listed below.")
            )
        sections.append(leaderboard_html(record))
        if not complete.empty:
            sections.append(_figure(fig_task_deltas(record)))
            for name, text in MISSING.items():
                figure = getattr(figures, name)(record)  # a figure, or a note of its own
                if isinstance(figure, str):
                    sections.append(_note(figure))
                else:
                    sections.append(_figure(figure) if figure is not None else _note(text))
    body = "\n".join(sections)
    title = html.escape(f"mtl-sweeps · {record.name}")
    meta = f"<meta http-equiv='refresh' content='{int(refresh_s)}'>\n" if refresh_s else ""
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"{meta}<title>{title}</title>\n<style>{_CSS}</style>\n"
        f"<script type='text/javascript'>{get_plotlyjs()}</script>\n"
        f"<script type='text/javascript'>{_SORT_JS}</script>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def leaderboard_html(record: StudyRecord) -> str:
    """The leaderboard as an HTML table that sorts by any column on a click on its header."""
    table = fig_leaderboard(record).data[0]
    header = list(table.header.values)
    columns = [list(c) for c in table.cells.values]
    colours = [
        list(c) if isinstance(c, list | tuple) else [c] * len(columns[0])
        for c in table.cells.font.color
    ]
    head = "".join(
        f"<th onclick='sortTable(this)' title='sort'>{html.escape(str(h))}</th>" for h in header
    )
    rows = []
    for r in range(len(columns[0]) if columns else 0):
        cells = "".join(
            f"<td style='color:{colours[c][r]}'>{html.escape(str(columns[c][r]))}</td>"
            for c in range(len(columns))
        )
        rows.append(f"<tr>{cells}</tr>")
    title = html.escape(table_title(record))
    return (
        f"<section><h2>{title}</h2><table class='leaderboard'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def table_title(record: StudyRecord) -> str:
    return (
        "Trials, best validation Δm first (click a header to sort; test Δ per task against its single-task "
        "baseline; red = negative transfer; with several seeds ±95% interval, * = the interval "
        "excludes 0, pale = within noise)"
    )


_SORT_JS = """
function sortTable(th) {
  const table = th.closest('table'), body = table.tBodies[0];
  const index = Array.from(th.parentNode.children).indexOf(th);
  const asc = th.dataset.order !== 'asc';
  th.parentNode.querySelectorAll('th').forEach(h => delete h.dataset.order);
  th.dataset.order = asc ? 'asc' : 'desc';
  const key = cell => {
    const text = cell.textContent.trim(), number = parseFloat(text.replace('±', ' '));
    return text === '' ? null : isNaN(number) ? text : number;
  };
  const rows = Array.from(body.rows).sort((a, b) => {
    const x = key(a.cells[index]), y = key(b.cells[index]);
    if (x === y) return 0;
    if (x === null) return 1;  // blanks (pruned, failed, not measured) last either way
    if (y === null) return -1;
    if (typeof x === 'number' && typeof y === 'number') return asc ? x - y : y - x;
    return asc ? String(x).localeCompare(String(y)) : String(y).localeCompare(String(x));
  });
  rows.forEach(row => body.appendChild(row));
}
"""


def fig_leaderboard(record: StudyRecord) -> go.Figure:
    """Every trial, best validation Δm first (the objective: test figures never order it);
    each Δ cell green when positive, red when negative."""
    df = record.trials.copy()
    df["_order"] = df["valid_delta_m"].fillna(float("-inf"))
    df = df.sort_values(["_order", "number"], ascending=[False, True])
    params = [p for p in SHOWN_PARAMS if f"param:{p}" in df]
    delta_cols = [names.delta(t) for t in record.tasks if names.delta(t) in df]
    header = ["trial", "state", "tasks", *[p.split(".")[-1] for p in params]]
    header += ["valid Δm %", "test Δm %"]
    header += [f"test Δ {c.split('/', 1)[1]} %" for c in delta_cols]
    values = [df["number"].astype(str), df["state"], df["tasks"]]
    values += [df[f"param:{p}"].fillna("").map(_short) for p in params]
    numeric = [df["valid_delta_m"], df["delta_m"]]
    values += [col.map(_pct) for col in numeric]
    neutral = [[NEUTRAL] * len(df)] * (3 + len(params))
    colours = neutral + [col.map(_colour).tolist() for col in numeric]
    for c in delta_cols:  # with several seeds: ± the 95% interval, * where it excludes zero
        ci, sig = df.get(f"{c}_ci95"), df.get(f"{c}_significant")
        texts, tints = [], []
        for k in range(len(df)):
            value = df[c].iloc[k]
            half = None if ci is None else ci.iloc[k]
            flag = None if sig is None else sig.iloc[k]
            texts.append(_pct(value) + _interval(half, flag))
            tints.append(_colour(value, flag))
        values.append(texts)
        colours.append(tints)
    header.append("note")  # why a trial was pruned or failed
    values.append(df["error"].fillna("").map(lambda text: str(text)[:200]))
    colours.append([NEUTRAL] * len(df))
    figure = go.Figure(
        go.Table(
            header={
                "values": header,
                "fill_color": "#eeeeee",
                "align": "left",
                "font": {"size": 12},
            },
            cells={
                "values": values,
                "align": "left",
                "font": {"color": colours, "size": 12},
                "height": 24,
            },
        )
    )
    figure.update_layout(
        title="Trials, best validation Δm first (test Δ per task against its single-task baseline; red = negative "
        "transfer; with several seeds ±95% interval, * = the interval excludes 0, pale = within noise)",
        height=min(900, 140 + 26 * len(df)),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure


def fig_task_deltas(record: StudyRecord) -> go.Figure:
    """Each task's Δ per completed trial; negative bars (negative transfer) in red."""
    df = record.complete.sort_values("number")
    figure = go.Figure()
    for index, task in enumerate(record.tasks):
        column = names.delta(task)
        if column not in df:
            continue
        rows = df[df[column].notna()]
        significant = rows.get(f"{column}_significant")
        noise = (
            (significant == 0) if significant is not None else pd.Series(False, index=rows.index)
        )
        # traces in one slot (offsetgroup), every bar in the task's colour (all-red losses
        # hid which task lost): losses hatched with a red outline; with several seeds, losses
        # whose 95% interval holds zero dotted with a pale outline (noise, not transfer)
        colour = _TASK_COLOURS[index % len(_TASK_COLOURS)]
        kinds = (
            ("gain", rows[column] >= 0, {"color": "#333333", "width": 0.5}, ""),
            ("loss", (rows[column] < 0) & ~noise, {"color": NEGATIVE, "width": 2.5}, "x"),
            ("loss within noise", (rows[column] < 0) & noise, {"color": NOISE, "width": 1.5}, "."),
        )
        for kind, mask, outline, hatch in kinds:
            part = rows[mask]
            if kind != "gain" and part.empty:
                continue
            ci = part.get(f"{column}_ci95")
            figure.add_bar(
                name=task if kind == "gain" else f"{task}: {kind}",
                x=[f"trial {n}" for n in part["number"]],
                y=part[column],
                error_y=None
                if ci is None
                else {"type": "data", "array": ci.fillna(0).tolist(), "visible": True},
                marker={"color": colour, "line": outline, "pattern": {"shape": hatch}},
                offsetgroup=task,
                legendgroup=task,
                showlegend=kind != "loss",
                hovertemplate=f"{task} ({kind})<br>%{{x}}<br>Δ %{{y:+.2f}}%<extra></extra>",
            )
    order = [f"trial {n}" for n in df["number"]]
    figure.update_xaxes(type="category", categoryorder="array", categoryarray=order)
    figure.add_hline(y=0, line={"color": "#333333", "width": 1})
    figure.update_layout(
        title="Δ per task and trial, in % of the single-task baseline (negative transfer: hatched, "
        "outlined red; within noise: dotted)",
        barmode="group",
        yaxis_title="Δ %",
        height=450,
        margin={"l": 50, "r": 10, "t": 50, "b": 40},
    )
    return figure


def _header(record: StudyRecord) -> str:
    name = html.escape(record.name)
    if record.trials.empty:
        return f"<h1>Study {name}</h1>"
    counts = record.trials["state"].value_counts()
    states = ", ".join(f"{n} {html.escape(str(s)).lower()}" for s, n in counts.items())

    winner = pick_winner(record.trial_runs, record.confirm_runs)
    if winner is None:
        best = "no completed trial yet"
    else:
        how = (
            f"confirmed with {winner.valid_delta_m.seeds} fresh seeds"
            if winner.confirmed
            else "not confirmed"
        )
        search = best_by_validation(record.trial_runs)
        best = ""
        if winner.confirmed and search is not None:  # the search's own arg-max, then the winner
            number = search.data.tags.get(names.TRIAL_NUMBER)
            best = (
                f"best trial by validation: {number} (validation Δm "
                f"{search.data.metrics[names.VALID_DELTA_M]:+.2f}%, its test Δm "
                f"{search.data.metrics.get(names.DELTA_M, float('nan')):+.2f}%); "
            )
        best += (
            f"winner, chosen on validation: trial {winner.number} on "
            f"{html.escape(','.join(winner.tasks))} ({how}), validation Δm "
            f"{html.escape(winner.valid_delta_m.text())}, test Δm "
            f"{html.escape(winner.test_delta_m.text())}"
        )
    best += "; " + html.escape(share_text([*record.trial_runs, *record.confirm_runs]))
    columns = [names.delta(t) for t in record.tasks if names.delta(t) in record.complete]
    negative = sum(int((record.complete[c] < 0).sum()) for c in columns)
    real = sum(
        int(((record.complete[c] < 0) & (record.complete[c + names.SIGNIFICANT] < 0)).sum())
        for c in columns
        if f"{c}_significant" in record.complete
    )
    tested = any(f"{c}_significant" in record.complete for c in columns)
    verdict = (
        f" ({real} significant at 95% over seeds, {negative - real} within noise)"
        if tested
        else " (one seed per trial: set training.seeds to tell real ones from noise)"
    )
    return (
        f"<h1>Study {name}</h1>\n<p>{len(record.trials)} trials ({states}); {best}; "
        f"{negative} task result(s) with negative transfer{verdict if negative else ''}.</p>"
    )


def _figure(figure: go.Figure) -> str:
    return "<section>" + figure.to_html(full_html=False, include_plotlyjs=False) + "</section>"


def _note(text: str) -> str:
    return f"<p class='note'>{html.escape(text)}</p>"


def _pct(value) -> str:
    return "" if value is None or pd.isna(value) else f"{value:+.2f}"


def _colour(value, significant=None) -> str:
    if value is None or pd.isna(value):
        return NEUTRAL
    if significant is not None and not pd.isna(significant) and significant == 0:
        return NOISE if value < 0 else NEUTRAL
    return NEGATIVE if value < 0 else POSITIVE


def _interval(half, significant) -> str:
    if half is None or pd.isna(half):
        return ""
    star = "*" if significant is not None and not pd.isna(significant) and significant else ""
    return f" ±{half:.2f}{star}"


def _short(value) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.3g}" if not number.is_integer() else str(int(number))


_TASK_COLOURS = [
    "#1f77b4",
    "#9467bd",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#7f7f7f",
    "#ff7f0e",
]
_CSS = (
    "body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
    "h1{font-size:22px;margin:0 0 6px}section{margin:18px 0}h2{font-size:16px}"
    "table.leaderboard{border-collapse:collapse;font-size:13px}"
    "table.leaderboard th{background:#eee;cursor:pointer;text-align:left;padding:4px 8px}"
    "table.leaderboard td{padding:3px 8px;border-bottom:1px solid #eee}"
    ".note{background:#fff8e1;border-left:4px solid #f0b400;padding:8px 12px}"
    "section.report{background:#f7f9fc;border:1px solid #dde3ec;padding:4px 16px 8px}"
    "section.report h2{font-size:18px}section.report h3{font-size:15px;margin:12px 0 4px}"
    "table.report{border-collapse:collapse;font-size:13px}"
    "table.report th,table.report td{border-bottom:1px solid #dde3ec;padding:3px 8px;text-align:left}"
)
