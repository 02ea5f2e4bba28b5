"""What ``sweeps run`` shows while it works: trials done of the total, the current trial's
epoch, the best Δm so far. A live rich display on a terminal, one plain line per trial
otherwise (logs, CI)."""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class Reporter:
    """Quiet by default; ``LiveReporter`` and ``LineReporter`` show progress."""

    def start(self, study: str, done: int, total: int, who: str = "") -> None: ...

    def trial_started(self, number: int, tasks: list[str], params: dict) -> None: ...

    def phase(self, text: str) -> None: ...

    def epoch(self, epoch: int, epochs: int) -> None: ...

    def trial_finished(
        self,
        number: int,
        state: str,
        value: float | None,
        best: float | None,
        note: str = "",
        finished: int | None = None,
    ) -> None:
        """``finished``: the study's finished trials, every process's (a worker counting its
        own printed [1/4] beside another's [1/4])."""

    def confirmed(self, number: int, value: float | None, seeds: int, note: str = "") -> None: ...

    def stop(self) -> None: ...


def _describe(number: int, state: str, value: float | None, best: float | None, note: str) -> str:
    shown = f"valid Δm {value:+.2f}%" if value is not None else note
    best_text = f"best {best:+.2f}%" if best is not None else "no best yet"
    return f"trial {number}: {state} {shown} · {best_text}"


def _confirmed(number: int, value: float | None, seeds: int, note: str) -> str:
    shown = f"valid Δm {value:+.2f}%" if value is not None else f"failed: {note}"
    return f"confirm trial {number} with {seeds} fresh seeds: {shown}"


class LineReporter(Reporter):
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = 0
        self.done = 0
        self.who = ""

    def start(self, study: str, done: int, total: int, who: str = "") -> None:
        self.done, self.total, self.who = done, total, who
        print(
            f"{who}study {study}: {done} of {total} trials finished", file=self.stream, flush=True
        )

    def trial_finished(self, number, state, value, best, note="", finished=None):
        self.done = finished if finished is not None else self.done + 1
        line = _describe(number, state, value, best, note)
        print(
            f"{self.who}{line} (study: {self.done} of {self.total} finished)",
            file=self.stream,
            flush=True,
        )

    def confirmed(self, number, value, seeds, note=""):
        print(_confirmed(number, value, seeds, note), file=self.stream, flush=True)


class LiveReporter(Reporter):
    def __init__(self, console: Console | None = None) -> None:
        # markup off: study names, task settings and failure reasons come from the user
        self.console = console or Console(stderr=True, markup=False, emoji=False)
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}", markup=False),
            console=self.console,
            transient=False,
        )
        self.trials = self.progress.add_task("trials", total=1, info="")
        self.who = ""
        self.current = self.progress.add_task("trial", total=1, info="", visible=False)

    def start(self, study, done, total, who=""):
        self.who = who
        self.progress.update(
            self.trials, description=f"{who}study {study}", total=total, completed=done
        )
        self.progress.start()

    def trial_started(self, number, tasks, params):
        self.progress.update(
            self.current,
            description=f"trial {number}",
            completed=0,
            total=1,
            visible=True,
            info=f"{','.join(tasks)} · {params.get('training.schedule')} · {params.get('training.weighting')}",
        )

    def phase(self, text):
        self.progress.update(self.current, info=text)

    def epoch(self, epoch, epochs):
        self.progress.update(self.current, completed=epoch, total=epochs)

    def trial_finished(self, number, state, value, best, note="", finished=None):
        self.progress.console.print(self.who + _describe(number, state, value, best, note))
        info = f"best {best:+.2f}%" if best is not None else ""
        if finished is None:
            self.progress.update(self.trials, advance=1, info=info)
        else:  # the study's count: other workers' trials too
            self.progress.update(self.trials, completed=finished, info=info)
        self.progress.update(self.current, visible=False)

    def confirmed(self, number, value, seeds, note=""):
        self.progress.console.print(_confirmed(number, value, seeds, note))
        self.progress.update(self.current, visible=False)

    def stop(self):
        self.progress.stop()


def reporter_for(quiet: bool = False) -> Reporter:
    if quiet:
        return Reporter()
    return LiveReporter() if sys.stderr.isatty() else LineReporter()
