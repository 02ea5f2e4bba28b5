"""Ctrl-C and SIGTERM that wait for the store write in progress.

A ``KeyboardInterrupt`` raised inside a database or HTTP call can leave a SQLite transaction
open (the file stays locked) or a run half-recorded. ``atomic()`` defers SIGINT until the
call it wraps has returned. Around MLflow calls it then raises it at once. Around Optuna's
storage calls it only keeps it pending (``raise_now=False``): those calls run inside Optuna's
own bookkeeping (telling a trial's state), where an exception breaks the record; the pending
interrupt is raised at the next MLflow call or by ``raise_pending()`` in the runner's loop,
within an epoch. Only the main thread receives signals, so elsewhere it does nothing.

``stop_on_signals()`` (around `sweeps run` and `sweeps worker`) makes SIGTERM, the signal that
`docker compose stop`, a Kubernetes eviction and `timeout` send, stop the command as Ctrl-C
does, and lets the clean-up that follows the first signal finish: a second Ctrl-C or SIGTERM
while the interrupted trial is being recorded is noted, not raised (it used to cut the
clean-up short, leaving the trial to a later run's "no heartbeat"); a third ends the process
at once (a store that does not answer would otherwise hold it for ``store_retry_s``).

Once a signal has stopped the command, a store that does not answer is retried until
``STOPPING_RETRY_S`` after the signal (``retry_budget``; each call still gets one try), not for
``store_retry_s`` per call: the trial in flight is then left to the next run, which takes it
over once its heartbeat is stale. In a fresh-clone CI run a stopped `sweeps run --workers 2`
took 4.5 minutes to exit: its helper found the Optuna file locked ("database is locked") and
retried its heartbeat and its trial's record for 120 s each, while the parent waited for it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

_PENDING: list[int] = []
_STOPPING: list[int] = []  # the signal that stopped the command, once one has
_DEFERRING: list[bool] = []  # inside atomic() under stop_on_signals
_ACTIVE: list[bool] = []  # inside stop_on_signals
_SIGNALLED_AT: list[float] = []  # when the first signal came (time.monotonic())
_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
STOPPING_RETRY_S = 10.0  # how long a stopping command waits for a store that does not answer


def raise_pending() -> None:
    """Raise a Ctrl-C that arrived during a deferred call, if one did."""
    if _PENDING and threading.current_thread() is threading.main_thread():
        signum = _PENDING[0]
        _PENDING.clear()
        if _STOPPING:  # already stopping: let the clean-up finish
            return
        if signal.getsignal(signal.SIGINT) is _on_signal:
            _STOPPING.append(signum)
        raise KeyboardInterrupt


def raise_if_stopped() -> None:
    """At the top of a loop of trials: a stopped command starts no new trial, even where its
    interrupt was lost on the way out (a store's error raised while recording the trial in
    flight replaces it, and Optuna catches that as one failed trial)."""
    if stopping() and threading.current_thread() is threading.main_thread():
        raise KeyboardInterrupt


def _on_signal(signum: int, frame) -> None:
    if not _SIGNALLED_AT:
        _SIGNALLED_AT.append(time.monotonic())
    if _STOPPING:  # already stopping: the clean-up goes on; a third signal ends it at once
        _STOPPING.append(signum)
        if len(_STOPPING) == 2:
            print(
                "stopping: recording the trial in flight (send it again to stop at once)",
                file=sys.stderr,
                flush=True,
            )
        else:
            os._exit(exit_code())
        return
    if _DEFERRING:
        _PENDING.append(signum)
        return
    _STOPPING.append(signum)
    raise KeyboardInterrupt


def _dropped(unraisable) -> None:
    """``sys.unraisablehook`` under ``stop_on_signals``: Python drops an exception raised in a
    ``__del__`` or a weakref callback ("Exception ignored in ..."). A Ctrl-C or SIGTERM whose
    KeyboardInterrupt was dropped there was lost, and the worker trained on (a Ray worker's
    SIGTERM landed in SQLAlchemy's and weakref's callbacks under load); it is kept pending
    instead, and raised at the epoch's end or the next store call (``raise_pending``)."""
    if issubclass(unraisable.exc_type, KeyboardInterrupt) and len(_STOPPING) == 1:
        _PENDING.append(_STOPPING.pop())
        return
    _HOOKS[-1](unraisable)


_HOOKS: list = []  # the unraisablehook in place before stop_on_signals


def stopping() -> bool:
    """Whether a signal has stopped the command (its clean-up is running); False once
    ``stop_on_signals`` has ended (an in-process caller's next call is not stopping)."""
    return bool(_STOPPING) and bool(_ACTIVE)


def retry_budget(retry_s: float, started: float) -> float:
    """How long a store call that began at ``started`` (``time.monotonic()``) may be retried:
    ``retry_s``; once a signal has stopped the command, only until ``STOPPING_RETRY_S`` after
    that signal (any thread: the clean-up's and the heartbeat's)."""
    if not (stopping() and _SIGNALLED_AT):
        return retry_s
    return min(retry_s, max(0.0, _SIGNALLED_AT[0] + STOPPING_RETRY_S - started))


def stopped_by() -> str:
    """What stopped the command: "Ctrl-C" (also when no signal handler of ours ran) or
    "SIGTERM"."""
    return _NAMES.get(_STOPPING[0], "Ctrl-C") if _STOPPING else "Ctrl-C"


def exit_code() -> int:
    """The shell's code for the signal that stopped the command: 130 for Ctrl-C, 143 for TERM."""
    return 128 + (_STOPPING[0] if _STOPPING else signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM stop the command cleanly (see the module's text); the previous
    handlers come back after it, so a caller in-process (a test, a notebook) keeps its own."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    _STOPPING.clear()
    _PENDING.clear()
    _SIGNALLED_AT.clear()
    _ACTIVE.append(True)
    for sig in previous:
        signal.signal(sig, _on_signal)
    _HOOKS.append(sys.unraisablehook)
    sys.unraisablehook = _dropped
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = _HOOKS.pop()
        _PENDING.clear()
        _ACTIVE.pop()


@contextlib.contextmanager
def atomic(raise_now: bool = True) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if raise_now:
        raise_pending()
    previous = signal.getsignal(signal.SIGINT)
    if previous is _on_signal:  # under stop_on_signals: SIGINT and SIGTERM both wait
        _DEFERRING.append(True)
        try:
            yield
        finally:
            _DEFERRING.pop()
            if raise_now and not _DEFERRING:
                raise_pending()
        return
    if previous is not signal.default_int_handler:  # someone else handles Ctrl-C: leave it
        yield
        return
    signal.signal(signal.SIGINT, lambda signum, frame: _PENDING.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if raise_now:
            raise_pending()
