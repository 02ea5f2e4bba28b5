"""The ``sweeps`` command line. Heavy libraries (torch, mlflow, optuna) load inside the
commands that need them, so ``--help`` and ``validate`` stay fast."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Multi-task learning sweeps: which tasks should share a network, and how.",
)

StudyPath = Annotated[Path, typer.Argument(help="the study file (study.yaml)", show_default=False)]


def _err(text: str) -> None:
    from sweeps.masking import shown

    print(shown(text), file=sys.stderr, flush=True)


def _guard(body: Callable[[], int | None]) -> None:
    """User errors: a short message, exit 2. Other failures: one line, exit 1
    (MTL_DEBUG=1 shows the traceback)."""
    from sweeps.errors import StudyError

    try:
        code = body() or 0
    except StudyError as exc:
        for line in exc.problems[:20]:
            _err(f"error: {line}")
        if len(exc.problems) > 20:
            _err(f"error: ... and {len(exc.problems) - 20} more")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        from sweeps.interrupts import exit_code, stopped_by

        _err(
            f"interrupted ({stopped_by()}): the trial in flight was recorded as failed;"
            " run again to resume"
        )
        raise typer.Exit(exit_code()) from None
    except typer.Exit:
        raise
    except Exception as exc:
        if os.environ.get("MTL_DEBUG"):
            raise
        _err(f"error: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    raise typer.Exit(code)


def _load(path: Path, with_data: bool = True, writes: bool = False):
    """The study and its data, checked; ``writes``: for the commands that write (and
    `validate`, which answers for them), the workdir must be writable too."""
    from sweeps.errors import StudyError
    from sweeps.spec import check_device, check_trunk, check_writable, load_spec

    spec = load_spec(path)
    problems = check_writable(spec) + check_device(spec) + check_trunk(spec) if writes else []
    if problems:
        raise StudyError(problems)
    if not with_data:
        return spec, None
    # only when asked for: the data modules load pandas and scipy (`status` needs neither)
    from sweeps.study_data import load_study_data

    return spec, load_study_data(spec)


@app.command()
def validate(study: StudyPath) -> None:
    """Check the study file and every data file without training; print the plan."""

    def body() -> int:
        from sweeps.plan import print_plan

        spec, data = _load(study, writes=True)
        print_plan(spec, data)
        return 0

    _guard(body)


@app.command()
def run(
    study: StudyPath,
    trials: Annotated[
        int | None, typer.Option(help="run until the study has N finished trials")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(min=1, help="workers sharing the study: processes here, or Ray tasks (--ray)"),
    ] = 1,
    timeout: Annotated[
        float | None, typer.Option(help="stop starting trials after S seconds")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
    ray: Annotated[
        str | None,
        typer.Option(help="run the workers as Ray tasks on this Ray cluster (auto, HOST:PORT)"),
    ] = None,
    ray_cpus: Annotated[float, typer.Option(min=0.01, help="CPUs per Ray worker")] = 1.0,
    ray_gpus: Annotated[float, typer.Option(min=0, help="GPUs per Ray worker")] = 0.0,
) -> None:
    """Create or resume the study and run trials until it has enough finished ones."""

    def body() -> int:
        from sweeps.interrupts import stop_on_signals

        with stop_on_signals():  # SIGTERM as Ctrl-C
            spec, _ = _load(study, writes=True)  # all is checked before anything is written
            if ray is not None:
                return _run_on_ray(
                    spec, study, ray, workers, ray_cpus, ray_gpus, trials, timeout, quiet
                )
            return _run(spec, study, trials, workers, timeout, quiet, worker=False)

    _guard(body)


@app.command()
def worker(
    study: StudyPath,
    trials: Annotated[
        int | None, typer.Option(help="run until the study has N finished trials")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="stop starting trials after S seconds")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
) -> None:
    """Join the study from another process or machine (same storage) and run trials."""

    def body() -> int:
        from sweeps.interrupts import stop_on_signals

        with stop_on_signals():  # SIGTERM as Ctrl-C
            spec, _ = _load(study, writes=True)
            return _run(spec, study, trials, 1, timeout, quiet, worker=True)

    _guard(body)


def _run(spec, path: Path, trials, workers: int, timeout, quiet: bool, worker: bool) -> int:
    from sweeps.local_run import run_here
    from sweeps.pages import write_dashboard
    from sweeps.progress import reporter_for

    summary = run_here(spec, path, trials, workers, timeout, reporter_for(quiet), worker)
    if summary.closed:
        summary.dashboard = write_dashboard(spec, summary, _err)
    if worker:
        _err(f"worker done: the study has {summary.finished} finished trials")
        if summary.closed and summary.dashboard:
            _err(f"the study is complete; dashboard: {summary.dashboard}")
        return 0
    _print_summary(spec, path, summary)
    return 0


def _run_on_ray(spec, path: Path, address, workers, cpus, gpus, trials, timeout, quiet) -> int:
    """The workers as Ray tasks (``sweeps.ray_run``); once they end with the study complete,
    this process closes it as ``sweeps run`` does (the verdict, the dashboard): it trains
    nothing itself."""
    from sweeps.ray_run import run_on_ray, study_done

    if run_on_ray(spec, path, address, workers, cpus, gpus, trials, timeout, _err) != 0:
        _err("error: a Ray worker failed (its output is above); run again to go on")
        return 1
    finished, target = study_done(spec, trials)
    if finished < target:
        _err(
            f"the Ray workers stopped with {finished} of {target} trials finished; run again to go on"
        )
        return 0
    return _run(spec, path, trials, 1, timeout, quiet, worker=False)


def _print_summary(spec, path: Path, summary) -> None:
    best = (
        f"best by validation: trial {summary.best_number}, validation Δm {summary.best_value:+.2f}%"
        if summary.best_number is not None
        else "no trial completed"
    )
    stop = " (stopped by the timeout)" if summary.stopped_by_timeout else ""
    from sweeps.masking import mask

    print(f"study {spec.name}: {summary.finished} finished trials{stop}; {best}")
    if summary.confirmed or (summary.closed and spec.search.confirms):
        from sweeps.verdict import pick_winner, study_runs, winner_lines

        runs = study_runs(spec)
        for line in winner_lines(pick_winner(runs["trial"], runs["confirm"])):
            print(f"  {line}")
    if summary.pareto:
        front = ", ".join(f"trial {n}" for n in summary.pareto)  # "trials: 0" read as none
        print(f"  Pareto-optimal (by each task's validation Δ): {front}")
    print(f"  trials:    sweeps status {path}")
    print(f"  MLflow UI: sweeps ui {path}   (tracking store {mask(spec.tracking)})")
    if summary.report:
        print(f"  verdict:   {summary.report}   (sweeps report {path})")
    if summary.dashboard:
        print(f"  dashboard: {summary.dashboard}")
    if summary.best_number is not None:
        print(f"  predict:   sweeps predict {path} --input FILE --out FILE   (the winner's model)")


@app.command()
def status(
    study: StudyPath,
    rows: Annotated[
        int,
        typer.Option(min=0, help="trials shown in the table, the most recent (0: every trial)"),
    ] = 40,
) -> None:
    """A table of trials (state, tasks, Δm, params), the best by validation and the winner."""

    def body() -> int:
        from sweeps.status import print_status

        spec, _ = _load(study, with_data=False)
        print_status(spec, rows=rows)
        return 0

    _guard(body)


@app.command()
def dashboard(
    study: StudyPath,
    out: Annotated[
        Path | None, typer.Option(help="folder for dashboard.html (default: the workdir)")
    ] = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="serve it on 127.0.0.1 and rebuild it as trials finish")
    ] = False,
    port: Annotated[int, typer.Option(help="port for --serve (0: any free one)")] = 8050,
    refresh: Annotated[int, typer.Option(min=1, help="seconds between rebuilds with --serve")] = 10,
) -> None:
    """Write the Plotly comparison dashboard as one self-contained HTML file."""

    def body() -> int:
        from dashboards import build_dashboard

        spec, _ = _load(study, with_data=False)
        if serve:
            import signal

            from dashboards.serve import serve_dashboard

            signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly on TERM
            folder = out or spec.workdir_path
            return serve_dashboard(spec.tracking, spec.name, folder, "127.0.0.1", port, refresh)
        path = build_dashboard(
            spec.tracking, spec.name, (out or spec.workdir_path) / "dashboard.html"
        )
        print(path)
        return 0

    _guard(body)


@app.command()
def ui(
    study: StudyPath,
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 5000,
    host: Annotated[
        str, typer.Option(help="address to bind; 127.0.0.1 unless told otherwise")
    ] = "127.0.0.1",
) -> None:
    """Start the MLflow UI on this study's tracking store (runs until stopped)."""

    def body() -> int:
        from sweeps.server import serve_ui

        spec, _ = _load(study, with_data=False)
        return serve_ui(spec, host, port)

    _guard(body)


@app.command()
def baselines(
    study: StudyPath,
    show: Annotated[
        bool, typer.Option("--show", help="only list what is recorded; train nothing")
    ] = False,
) -> None:
    """Run (tuned mode: tune, then train per seed) or show the study's single-task baselines."""

    def body() -> int:
        from sweeps.baseline_report import run_or_show

        spec, _ = _load(study, with_data=False)
        return run_or_show(spec, show)

    _guard(body)


@app.command()
def transfer(
    study: StudyPath,
    settings: Annotated[
        str,
        typer.Option(help="`best`: the best complete trial's settings; `fixed`: the file's"),
    ] = "best",
) -> None:
    """Train every pair of tasks with one setting and print the pair transfer matrix."""

    def body() -> int:
        from sweeps.errors import StudyError

        if settings not in ("best", "fixed"):
            raise StudyError(f"--settings: {settings!r}; use best or fixed")
        from sweeps.console import plain_console as _console
        from sweeps.transfer_runs import run_transfer

        spec, _ = _load(study)
        run_transfer(spec, settings, _console())
        return 0

    _guard(body)


@app.command()
def groups(
    study: StudyPath,
    budget: Annotated[int, typer.Option(help="at most this many networks")] = 2,
    source: Annotated[
        str,
        typer.Option(help="`pairs`: the pair transfer matrix; `affinity`: measured affinities"),
    ] = "pairs",
) -> None:
    """Recommend which tasks should share a network, under a budget of networks."""

    def body() -> int:
        from sweeps.errors import StudyError

        if source not in ("pairs", "affinity"):
            raise StudyError(f"--source: {source!r}; use pairs or affinity")
        from sweeps.console import plain_console as _console
        from sweeps.groups import run_groups

        spec, _ = _load(study, with_data=False)
        run_groups(spec, budget, source, _console())
        return 0

    _guard(body)


@app.command()
def report(study: StudyPath) -> None:
    """Write the verdict (<workdir>/report.md), chosen on validation, and log it on the study run.

    Per task: share or train alone; the grouping and settings; every figure with its interval
    and seeds, and the runs it rests on."""

    def body() -> int:
        spec, _ = _load(study, with_data=False)
        from sweeps.report import write_report

        path = write_report(spec)
        print(path.read_text(encoding="utf-8"))
        print(f"written to {path} and logged on the study run")
        return 0

    _guard(body)


TrialOption = Annotated[
    str,
    typer.Option(
        "--trial",
        help="best (the validation winner, its confirm run when confirmed) or a trial number",
    ),
]


@app.command()
def export(
    study: StudyPath,
    out: Annotated[
        Path, typer.Option(help="the file to write: .csv or .parquet", show_default=False)
    ],
) -> None:
    """Write the results table (a row per trial, confirm and baseline run) as csv or parquet."""

    def body() -> int:
        from sweeps.api import Study
        from sweeps.errors import StudyError
        from sweeps.table_files import check_out, write_whole

        check_out(out, "results")
        spec, _ = _load(study, with_data=False)
        frame = Study(spec).results()
        if frame.empty:
            raise StudyError(f"study {spec.name!r} has no runs yet: run `sweeps run {study}` first")
        write_whole(frame, out)
        kinds = frame["kind"].value_counts()
        counted = ", ".join(
            f"{kinds[k]} {k}" for k in ("trial", "confirm", "baseline") if k in kinds
        )
        print(f"{out}: {len(frame)} rows ({counted}), {len(frame.columns)} columns")
        return 0

    _guard(body)


@app.command("import-wandb")
def import_wandb(
    sweep: Annotated[
        Path, typer.Argument(help="the W&B sweep file (sweep.yaml)", show_default=False)
    ],
    tasks: Annotated[
        Path,
        typer.Option(
            help="YAML: the study's tasks (or a study file's sections: tasks, features, ...)",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Option(help="the study file to write", show_default=False)],
    force: Annotated[bool, typer.Option(help="overwrite --out if it exists")] = False,
) -> None:
    """Translate a W&B sweep file into a study file, naming what cannot be carried over."""

    def body() -> int:
        from sweeps.wandb_import import import_file

        lost = import_file(sweep, tasks, out, force)
        print(f"wrote {out}; check it with: sweeps validate {out}")
        for line in lost:
            print(f"  not carried over: {line}")
        return 0

    _guard(body)


@app.command()
def predict(
    study: StudyPath,
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            help="a file of the study's raw input columns, with a header row (csv, tsv, "
            "parquet, jsonl; .npy/.npz rows for a study over arrays)",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="where to write predictions: .csv or .parquet")
    ],
    trial: TrialOption = "best",
    baseline: Annotated[
        str | None,
        typer.Option(help="predict with this task's single-task baseline model instead"),
    ] = None,
) -> None:
    """Predict with a recorded model: a column per output of each task the file can feed.

    A task is predicted when the file holds its input columns."""

    def body() -> int:
        spec, _ = _load(study, with_data=False)
        from sweeps.predict import predict_file

        done = predict_file(spec, trial, baseline, input, out)
        print(
            f"{done.rows} rows predicted for {', '.join(done.tasks)} with the model of "
            f"{done.model.describe} (run {done.model.run_id})"
        )
        for task, columns in done.skipped.items():
            print(f"  {task}: not predicted, the input lacks {', '.join(map(repr, columns))}")
        print(f"written to {done.out}")
        return 0

    _guard(body)


@app.command()
def register(
    study: StudyPath,
    name: Annotated[str, typer.Option("--name", help="the registered model's name")],
    trial: TrialOption = "best",
) -> None:
    """Put a recorded model in the MLflow model registry (of the study's tracking store)."""

    def body() -> int:
        spec, _ = _load(study, with_data=False)
        from sweeps.predict import register as register_model

        found, version = register_model(spec, trial, name)
        from sweeps.masking import mask

        print(
            f"registered {name!r} version {version.version}: the model of {found.describe} "
            f"(run {found.run_id})\n  load it: MLFLOW_TRACKING_URI={mask(spec.tracking)} and "
            f"mlflow.pyfunc.load_model('models:/{name}/{version.version}')"
        )
        return 0

    _guard(body)


@app.command()
def server(
    backend_store_uri: Annotated[
        str,
        typer.Option(
            envvar="MLFLOW_BACKEND_STORE_URI",
            show_envvar=True,
            help="where runs live: postgresql://USER:PASSWORD@HOST:PORT/DB (or sqlite:///FILE); "
            "from the environment, the password stays out of `ps`",
        ),
    ],
    artifacts_destination: Annotated[
        str, typer.Option(help="folder (or s3://, gs://... URI) for artifacts")
    ],
    host: Annotated[
        str, typer.Option(help="address to bind; 127.0.0.1 unless told otherwise")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 5000,
    allowed_hosts: Annotated[
        str | None,
        typer.Option(help="Host headers to accept besides localhost (e.g. 'mlflow,mlflow:5000')"),
    ] = None,
) -> None:
    """Start a shared MLflow tracking server (one worker, job runner off) for a team's studies."""

    def body() -> int:
        from sweeps.server import serve_tracking

        return serve_tracking(backend_store_uri, artifacts_destination, host, port, allowed_hosts)

    _guard(body)


@app.command()
def methods() -> None:
    """List every method a study can name, with the setting that selects it.

    Architectures, trunks, schedules, loss weightings, gradient methods, samplers and pruners,
    each with a line on what it does and its own settings."""
    from rich.console import Console
    from rich.table import Table

    from mtl_core.registry import CATALOGUE
    from sweeps.search_registry import SEARCH_CATALOGUE

    table = Table(show_lines=False)
    for column in ("kind", "name", "what it does", "setting", "its settings (default)"):
        table.add_column(column)
    for registry in [*CATALOGUE.values(), *SEARCH_CATALOGUE.values()]:
        for name, entry in registry.items():
            section = registry.setting.split(".")[0]
            own = ", ".join(f"{section}.{p.name} ({p.default:g})" for p in entry.params)
            table.add_row(registry.kind, name, entry.description, registry.setting, own)
    Console(width=max(140, Console().width), markup=False, emoji=False).print(table)
    print(
        "Gradient methods, gradnorm and stch need `training.schedule: joint`; "
        "`training.optimizer_per_task` needs a schedule with one task per step."
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
