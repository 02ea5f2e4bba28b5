"""Ctrl-C that waits for the store write in progress.

A ``KeyboardInterrupt`` raised inside a database or HTTP call can leave a SQLite transaction
open (the file stays locked) or a run half-recorded. ``atomic()`` defers SIGINT until the
call it wraps has returned. Around MLflow calls it then raises it at once. Around Optuna's
storage calls it only keeps it pending (``raise_now=False``): those calls run inside Optuna's
own bookkeeping (telling a trial's state), where an exception breaks the record; the pending
interrupt is raised at the next MLflow call or by ``raise_pending()`` in the runner's loop,
within an epoch. Only the main thread receives signals, so elsewhere it does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_PENDING: list[int] = []


def raise_pending() -> None:
    """Raise a Ctrl-C that arrived during a deferred call, if one did."""
    if _PENDING and threading.current_thread() is threading.main_thread():
        _PENDING.clear()
        raise KeyboardInterrupt


@contextlib.contextmanager
def atomic(raise_now: bool = True) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if raise_now:
        raise_pending()
    previous = signal.getsignal(signal.SIGINT)
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
