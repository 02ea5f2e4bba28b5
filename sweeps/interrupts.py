"""Ctrl-C that waits for the store write in progress.

A ``KeyboardInterrupt`` raised inside a database or HTTP call can leave a SQLite transaction
open (the file stays locked) or a run half-recorded. ``atomic()`` defers SIGINT until the
call it wraps has returned, then raises it: the sweep still stops within a second or two, and
every record is whole. Only the main thread receives signals, so elsewhere it does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def atomic() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:  # someone else handles Ctrl-C: leave it
        yield
        return
    pending: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pending:
            raise KeyboardInterrupt
