"""One process at a time opens a SQLite store for the first time.

MLflow and Optuna create their tables and run their schema migrations when a client first
opens a database. Two processes doing so on one fresh SQLite file at once (`sweeps run` and a
`sweeps status` in its first seconds, two workers started by one script, a test polling a
run) break each other: measured here, three MLflow clients started together on a fresh file
failed in 10 of 15 tries ("table experiments already exists", "duplicate column name: step",
"Online migration expected to match one row"), three Optuna storages in 1 of 15 ("UNIQUE
constraint failed: alembic_version"). ``first_open(uri)`` holds an exclusive ``flock`` on
``<file>.lock`` beside the database while the store is opened, so the first opener creates
it whole and the others find it ready. Server databases (PostgreSQL, MySQL) and MLflow
servers need no lock: their own transactions order the creators, and `sweeps` starts one
creator per server.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sweeps.sqlite_template import seed


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for anything else or in memory."""
    if not uri.lower().startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url  # only for SQLite URIs (0.25 s)

    try:
        database = make_url(uri).database
    except Exception:  # not a URL the stores could open either: they say why
        return None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


@contextlib.contextmanager
def first_open(uri: str, make_folder: bool = False) -> Iterator[None]:
    """Hold the SQLite file's creation lock; nothing for other stores. A missing folder is
    made first with ``make_folder`` (MLflow makes it anyway: locking after it would race);
    without, there is no lock and the store's own error says the folder is missing."""
    path = sqlite_file(uri)
    if path is not None and make_folder:
        with contextlib.suppress(OSError):  # the store's own error says why
            path.parent.mkdir(parents=True, exist_ok=True)
    if path is None or not path.parent.is_dir():
        yield
        return
    try:
        lock = open(f"{path}.lock", "a")
    except OSError:  # a read-only folder: readers of a finished store need no lock
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def mlflow_client(uri: str, registry_uri: str | None = None) -> Any:
    """An ``MlflowClient`` whose store is open: created, if it is new, by one process."""
    from mlflow.tracking import MlflowClient  # mlflow stays out of light commands

    with first_open(uri, make_folder=True):
        path = sqlite_file(uri)
        if path is not None and path.parent.is_dir():
            seed(path)  # a new file starts as a copy of an empty store MLflow made once
        return MlflowClient(uri, registry_uri=registry_uri)  # opens the store: tables, migrations
