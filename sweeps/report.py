"""``sweeps report STUDY.yaml``: the verdict of a study, as ``<workdir>/report.md``.

For each task: whether it gains from sharing and with which tasks, or should train alone; the
recommended grouping (``sweeps groups`` over the validation pair matrix); the recommended
width, schedule and weighting. Every choice is made on validation (``sweeps.verdict``); every
test figure is reported for what was chosen, with the number of seeds behind it, its 95%
interval where there are two or more, and a plain mark where it rests on one seed or is noise.
Every claim names the MLflow runs it rests on, and every number is one MLflow holds (the study
run's ``summary/...`` metrics are logged for the figures the report adds up).

The report is built from MLflow runs alone (``build_report``), so the dashboard shows the same
text at its top.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sweeps import record
from sweeps.errors import StudyError
from sweeps.groups import _trained_sets, recommend
from sweeps.transfer_matrix import pair_matrix, study_pair_runs
from sweeps.verdict import (
    SETTINGS,
    Estimate,
    Winner,
    baseline_share,
    best_by_validation,
    estimate,
    is_complete,
    pick_winner,
    study_runs,
    tasks_of,
)


@dataclass
class Report:
    """Blocks of a report: ("h1" | "h2" | "p", text), ("ul", [items]), ("table", header, rows)."""

    blocks: list[tuple] = field(default_factory=list)
    summary: dict[str, float] = field(default_factory=dict)  # summary/... metrics it adds up
    description: str = ""  # the study run's description in the MLflow UI (a few lines)

    def markdown(self) -> str:
        out: list[str] = []
        for block in self.blocks:
            kind = block[0]
            if kind == "h1":
                out += [f"# {block[1]}", ""]
            elif kind == "h2":
                out += [f"## {block[1]}", ""]
            elif kind == "p":
                out += [block[1], ""]
            elif kind == "ul":
                out += [f"- {item}" for item in block[1]] + [""]
            elif kind == "table":
                header, rows = block[1], block[2]
                out.append("| " + " | ".join(header) + " |")
                out.append("|" + " --- |" * len(header))
                out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
                out.append("")
        return "\n".join(out)

    def html(self) -> str:
        out: list[str] = ["<section class='report'>"]
        for block in self.blocks:
            kind = block[0]
            if kind in ("h1", "h2"):
                tag = "h2" if kind == "h1" else "h3"
                out.append(f"<{tag}>{html.escape(block[1])}</{tag}>")
            elif kind == "p":
                out.append(f"<p>{html.escape(block[1])}</p>")
            elif kind == "ul":
                out.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block[1]))
                out.append("</ul>")
            elif kind == "table":
                head = "".join(f"<th>{html.escape(h)}</th>" for h in block[1])
                rows = "".join(
                    "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                    for row in block[2]
                )
                out.append(f"<table class='report'><tr>{head}</tr>{rows}</table>")
        out.append("</section>")
        return "\n".join(out)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def build_report(
    name: str,
    tasks: Sequence[str],
    trial_runs: Sequence[Any],
    confirm_runs: Sequence[Any] = (),
    transfer_runs: Sequence[Any] = (),
) -> Report | None:
    """The verdict from MLflow runs (None when no trial completed)."""
    winner = pick_winner(trial_runs, confirm_runs)
    if winner is None:
        return None
    report = Report()
    complete = [r for r in trial_runs if is_complete(r)]
    states: dict[str, int] = {}
    for run in trial_runs:
        state = record.state_of(run)
        states[state] = states.get(state, 0) + 1
    report.summary.update({record.summary_trials(s): float(n) for s, n in states.items()})
    baseline_s, trial_s = baseline_share([*trial_runs, *confirm_runs])
    if trial_s > 0:
        report.summary.update(
            {
                record.SUMMARY_BASELINE_S: baseline_s,
                record.SUMMARY_TRIAL_S: trial_s,
                record.SUMMARY_BASELINE_SHARE: 100 * baseline_s / trial_s,
            }
        )
    report.summary.update(_winner_summary(winner))
    report.blocks.append(("h1", f"Verdict: study {name}"))
    counted = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items()))
    report.description = _description(name, len(trial_runs), counted, winner, trial_s, baseline_s)
    report.blocks.append(
        (
            "p",
            f"{len(trial_runs)} trials ({counted}). Every choice below is made on the validation "
            "split; test figures are reported for what was chosen and steer nothing. A figure "
            "marked '1 seed' has no interval; 'noise' means its 95% interval over the seeds "
            "holds 0.",
        )
    )
    _recommendation(report, winner)
    search = best_by_validation(trial_runs)
    if winner.confirmed and search is not None:
        valid = estimate(search, record.VALID_DELTA_M)
        test = estimate(search, record.DELTA_M)
        report.blocks.append(
            (
                "p",
                f"The search's best trial by validation was trial "
                f"{search.data.tags.get(record.TRIAL_NUMBER)} (validation Δm "
                f"{valid.text() if valid else '-'}, test Δm {test.text() if test else '-'}; run "
                f"{search.info.run_id}); confirmation re-trains the best configurations with "
                "fresh seeds and the winner is the best of them on validation.",
            )
        )
    finished = [r for r in trial_runs if record.has_results(r)]
    _per_task(report, winner, tasks, [*finished, *transfer_runs])
    _grouping(report, tasks, [*finished, *transfer_runs])
    _settings(report, complete)
    if trial_s > 0:
        report.blocks.append(
            (
                "p",
                f"Cost: baselines took {baseline_s:.2f} s of {trial_s:.2f} s of trial and "
                f"confirmation time ({100 * baseline_s / trial_s:.2f}%).",
            )
        )
    return report


def _winner_summary(winner: Winner) -> dict[str, float]:
    """The winner's figures as the study run's metrics: its trial, validation and test Δm
    (with their 95% half-widths where seeds give one) and the seeds behind them."""
    out = {
        record.SUMMARY_WINNER: float(winner.number),
        record.SUMMARY_VALID_DELTA_M: winner.valid_delta_m.value,
        record.SUMMARY_TEST_DELTA_M: winner.test_delta_m.value,
        record.SUMMARY_SEEDS: float(winner.valid_delta_m.seeds),
    }
    for name, figure in (
        (record.SUMMARY_VALID_DELTA_M, winner.valid_delta_m),
        (record.SUMMARY_TEST_DELTA_M, winner.test_delta_m),
    ):
        if figure.ci95 is not None:
            out[name + record.CI95] = figure.ci95
    return {k: v for k, v in out.items() if math.isfinite(v)}


def _description(
    name: str, trials: int, counted: str, winner: Winner, trial_s: float, baseline_s: float
) -> str:
    how = (
        f"confirmed with {winner.valid_delta_m.seeds} fresh seeds"
        if winner.confirmed
        else "not confirmed with fresh seeds"
    )
    lines = [
        f"**Study {name}**: {trials} trials ({counted}).",
        f"Winner, chosen on validation: trial {winner.number} on {', '.join(winner.tasks)} "
        f"({how}): validation Δm {winner.valid_delta_m.text()}; test Δm (reported, never "
        f"chosen on) {winner.test_delta_m.text()}.",
    ]
    if trial_s > 0:
        lines.append(f"Baselines took {100 * baseline_s / trial_s:.0f}% of the trial time.")
    lines.append("The verdict is the artifact `report.md`; the metrics `summary/...` hold it.")
    return "\n\n".join(lines)


def _recommendation(report: Report, winner: Winner) -> None:
    report.blocks.append(("h2", "Recommendation"))
    report.blocks.append(
        (
            "p",
            "The configuration was chosen on validation; whether sharing pays is then judged "
            "once, on the test split, for that configuration alone (the final assessment).",
        )
    )
    test = winner.test_delta_m
    together = ", ".join(winner.tasks)
    if test.one_seed:
        share = (
            f"Train {together} in one network: test Δm {test.text()}. This rests on one seed: "
            "confirm it (search.confirm) before relying on it."
        )
    elif test.significant and test.significant > 0:
        share = f"Train {together} in one network: test Δm {test.text()}."
    elif test.significant and test.significant < 0:
        share = (
            f"Do not share: even the best configuration by validation loses on test "
            f"(Δm {test.text()}); train each task alone."
        )
    else:
        share = (
            f"No measurable effect of sharing {together}: test Δm {test.text()}. One network "
            "costs less to serve and scores within noise of the single-task models."
        )
    how = (
        f"confirmed with {winner.valid_delta_m.seeds} fresh seeds"
        if winner.confirmed
        else winner.confirm_note or "not confirmed with fresh seeds"
    )
    settings = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in winner.settings.items())
    report.blocks.append(
        (
            "ul",
            [
                share,
                f"Winner, chosen on validation: trial {winner.number} ({how}), validation Δm "
                f"{winner.valid_delta_m.text()}; runs {', '.join(winner.runs)}.",
                f"Recommended settings: {settings}.",
            ],
        )
    )


def _per_task(report: Report, winner: Winner, tasks: Sequence[str], runs: Sequence[Any]) -> None:
    report.blocks.append(("h2", "Per task"))
    valid = pair_matrix(tasks, runs, split="valid")
    test = pair_matrix(tasks, runs, split="test")
    rows = []
    for task in tasks:
        verdict, figure = _task_verdict(task, winner)
        partners = [
            (valid.mean(task, j), j) for j in tasks if j != task and valid.mean(task, j) is not None
        ]
        if partners:
            value, j = max(partners)
            reported = test.mean(task, j)
            report.summary[record.summary_pair("valid", task, j)] = value
            if reported is not None:
                report.summary[record.summary_pair("test", task, j)] = reported
            partner = (
                f"{j}: validation Δ {value:+.2f}%, test Δ "
                + (f"{reported:+.2f}%" if reported is not None else "n/a")
                + f" (mean of {valid.count(task, j)} pair run(s))"
            )
        else:
            partner = "no pair run (sweeps transfer trains every pair)"
        rows.append([task, verdict, figure, partner])
    report.blocks.append(
        (
            "table",
            ["task", "verdict", "test Δ in the winner", "best partner by validation (pairs)"],
            rows,
        )
    )
    report.blocks.append(("p", f"Runs behind the winner's figures: {', '.join(winner.runs)}."))


def _task_verdict(task: str, winner: Winner) -> tuple[str, str]:
    if task not in winner.tasks:
        return "train alone: the winning configuration leaves it out", "-"
    found: Estimate | None = winner.test_deltas.get(task)
    if found is None:
        return "no test figure recorded", "-"
    others = ",".join(t for t in winner.tasks if t != task)
    if found.one_seed:
        word = "gain" if found.value > 0 else "loss"
        return f"{word} with {others} on one seed: not established", found.text()
    if found.significant and found.significant > 0:
        return f"gains from sharing with {others}", found.text()
    if found.significant and found.significant < 0:
        return f"loses from sharing with {others}: train alone", found.text()
    return f"no difference beyond noise with {others}", found.text()


def _grouping(report: Report, tasks: Sequence[str], runs: Sequence[Any]) -> None:
    report.blocks.append(("h2", "Grouping"))
    if len(tasks) < 2:
        report.blocks.append(("p", "One task: nothing to group."))
        return
    matrix = pair_matrix(tasks, runs, split="valid")
    missing = [f"{i}+{j}" for i in tasks for j in tasks if i < j and matrix.mean(i, j) is None]
    if missing:
        report.blocks.append(
            (
                "p",
                f"No recommendation: the pair matrix has no run of {', '.join(missing)}. "
                "`sweeps transfer STUDY.yaml` trains every pair, then `sweeps report` again.",
            )
        )
        return
    pair = {i: {j: matrix.mean(i, j) for j in tasks} for i in tasks}
    rec = recommend(tasks, len(tasks), pair, _trained_sets(list(runs), tasks), "pairs")
    groups = " | ".join(",".join(g) for g in rec.groups)
    report.summary[record.SUMMARY_GROUPS_PREDICTED] = rec.predicted
    report.blocks.append(
        (
            "p",
            f"Recommended networks (the partition with the highest summed validation pair Δ, "
            f"sweeps groups --source pairs): {groups}; predicted {rec.predicted:+.2f} "
            "(validation Δ %, summed). A task alone trains as its single-task baseline.",
        )
    )


def _settings(report: Report, complete: Sequence[Any]) -> None:
    """For each setting the study varied, the best trial by validation with each value."""
    varied = [
        key
        for key in SETTINGS
        if len({r.data.params.get(key) for r in complete if key in r.data.params}) > 1
    ]
    if not varied:
        return
    report.blocks.append(("h2", "Settings compared (best trial by validation for each value)"))
    rows = []
    for key in varied:
        values = sorted({r.data.params[key] for r in complete if key in r.data.params}, key=_order)
        for value in values:
            runs = [r for r in complete if r.data.params.get(key) == value]
            best = best_by_validation(runs)
            if best is None:
                continue
            valid = estimate(best, record.VALID_DELTA_M)
            test = estimate(best, record.DELTA_M)
            rows.append(
                [
                    key,
                    value,
                    str(len(runs)),
                    f"trial {best.data.tags.get(record.TRIAL_NUMBER)} ({','.join(tasks_of(best))})",
                    valid.text() if valid else "-",
                    test.text() if test else "-",
                    best.info.run_id,
                ]
            )
    report.blocks.append(
        (
            "table",
            ["setting", "value", "complete trials", "best", "validation Δm", "test Δm", "run"],
            rows,
        )
    )


def _order(value: str) -> tuple:
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def write_report(spec: Any, quiet_missing: bool = False, tracker: Any = None) -> Any:
    """Write ``<workdir>/report.md`` and log it (and the summary metrics) on the study run
    (through ``tracker`` when given). Returns the path, or None when no trial completed
    (``quiet_missing``: no error)."""
    # here, not at the top: mlflow loads only when this runs
    from sweeps.tracking import open_tracker

    runs = study_runs(spec)
    transfer = _transfer_runs(spec)
    report = build_report(spec.name, spec.task_names, runs["trial"], runs["confirm"], transfer)
    if report is None:
        if quiet_missing:
            return None
        raise StudyError(
            f"study {spec.name!r} has no complete trial yet: run `sweeps run {spec.source}` first"
        )
    path = spec.workdir_path / "report.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.markdown(), encoding="utf-8")
    tracker = tracker or open_tracker(spec)
    study = tracker.search(record.of_kind(record.STUDY_RUN, **{record.STUDY: spec.name}))
    if study:
        run_id = min(study, key=lambda r: (r.info.start_time, r.info.run_id)).info.run_id
        tracker.log(
            run_id,
            metrics=[(k, v, 0) for k, v in report.summary.items()],
            tags={record.DESCRIPTION: report.description},
        )
        tracker.log_artifact(run_id, path)
    return path


def _transfer_runs(spec: Any) -> list[Any]:
    return [r for r in study_pair_runs(spec) if record.kind_of(r) == record.TRANSFER]
