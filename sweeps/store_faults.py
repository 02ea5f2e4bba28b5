"""Store errors that waiting does not cure.

Both stores retry what looks like an outage (``sweeps.tracking``, ``sweeps.optuna_storage``).
A full disk or a file system made read-only also surfaces as SQLite's ``OperationalError``,
which the outage markers match: the sweep waited ``store_retry_s`` on each write and printed
a traceback per trial. ``unwritable(exc)`` names these, so they stop the sweep at once with
one line that says what to fix.
"""

from __future__ import annotations


class StoreUnwritable(RuntimeError):
    """A store refused a write that waiting will not make it take."""


UNWRITABLE = (
    "database or disk is full",
    "no space left on device",
    "disk quota exceeded",
    "attempt to write a readonly database",
    "read-only file system",
    "readonly database",
)


def unwritable(exc: BaseException) -> str | None:
    """What makes the store unwritable, from ``exc`` or its causes; None for anything else."""
    seen: BaseException | None = exc
    depth = 0
    while seen is not None and depth < 10:
        text = str(seen).lower()
        for marker in UNWRITABLE:
            if marker in text:
                return marker
        seen, depth = seen.__cause__ or seen.__context__, depth + 1
    return None
