"""Optuna's RDB storage made to outlast a database restart.

``RetryingRDBStorage`` is Optuna's ``RDBStorage`` with ``pool_pre_ping`` (a pooled connection
that the restart broke is replaced before use) and every storage call retried with backoff
(0.2 s doubling to 5 s, for at most ``retry_s`` seconds) when the database is unreachable or
drops the connection, heartbeats included. A worker therefore rides out a PostgreSQL restart
instead of failing its trial. Errors that are not about the connection are raised at once.
"""

from __future__ import annotations

import functools
import sys
import time
from typing import TYPE_CHECKING, Any

import optuna
import sqlalchemy.exc
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat

from sweeps.interrupts import atomic, retry_budget
from sweeps.masking import mask
from sweeps.sqlite_stores import first_open
from sweeps.store_faults import unwritable

if TYPE_CHECKING:
    from sweeps.schema import StudySpec

DISCONNECTED = (
    "server closed the connection",
    "terminating connection",
    "connection refused",
    "could not connect",
    "connection to server",
    "connection is closed",
    "the database system is",
    "ssl connection has been closed",
    "consuming input failed",
    # SQLAlchemy's PendingRollbackError, once a connection died inside a transaction
    "can't reconnect until invalid transaction is rolled back",
)


STORAGE_ERRORS = (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError)


def disconnected(exc: BaseException) -> bool:
    """Whether ``exc`` says the database did not answer (the storage retries those); a full
    disk or a read-only file system is not that (``sweeps.store_faults``)."""
    if unwritable(exc) is not None:
        return False
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
            return True
        if any(marker in str(seen).lower() for marker in DISCONNECTED):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class RetryingRDBStorage(RDBStorage):
    retry_s: float = 60.0

    def __init__(self, url: str, retry_s: float = 60.0, **kwargs: Any) -> None:
        self.retry_s, self.url = retry_s, url
        # hide_parameters: a database error's text holds no written values (a trial's reason
        # holding "could not connect" read as a dropped connection; no user data in warnings)
        engine_kwargs = {
            "pool_pre_ping": True,
            "hide_parameters": True,
            **kwargs.pop("engine_kwargs", {}),
        }
        if url.startswith("sqlite"):
            engine_kwargs.pop("pool_pre_ping")
        _retry(self, lambda: RDBStorage.__init__(self, url, engine_kwargs=engine_kwargs, **kwargs))


def _retry(storage: RetryingRDBStorage, call):
    started, wait = time.monotonic(), 0.2
    while True:
        try:
            with atomic(raise_now=False):  # Ctrl-C waits; raised outside Optuna
                return call()
        except STORAGE_ERRORS as exc:
            budget = retry_budget(storage.retry_s, started)  # shorter once a signal stops us
            if not disconnected(exc) or time.monotonic() - started >= budget:
                raise
            _say_once(storage, exc)
            time.sleep(wait)
            wait = min(wait * 2, 5.0)


_SAID: set[str] = set()  # storages already announced as unreachable, once per process


def _say_once(storage: RetryingRDBStorage, exc: BaseException) -> None:
    """One line on stderr when the database first fails to answer, so a wait is explained."""
    if storage.url in _SAID:
        return
    _SAID.add(storage.url)

    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    print(
        mask(
            f"warning: the Optuna storage {storage.url} does not answer ({first}); "
            f"retrying for up to {storage.retry_s:g} s (search.store_retry_s)"
        ),
        file=sys.stderr,
        flush=True,
    )


def _retrying(name: str):
    method = getattr(RDBStorage, name)

    @functools.wraps(method)
    def call(self, *args: Any, **kwargs: Any) -> Any:
        return _retry(self, lambda: method(self, *args, **kwargs))

    return call


for _name in sorted(
    {
        n
        for cls in (BaseStorage, BaseHeartbeat)
        for n, f in vars(cls).items()
        if callable(f) and not n.startswith("_") and n not in ("remove_session",)
    }
):
    setattr(RetryingRDBStorage, _name, _retrying(_name))


def make_storage(spec: StudySpec) -> optuna.storages.RDBStorage:
    """The study's Optuna storage: retrying, with heartbeats and retries of dead trials."""
    if spec.storage is None:
        spec.workdir_path.mkdir(parents=True, exist_ok=True)
    beat = spec.search.heartbeat_s
    with first_open(spec.optuna_storage):  # a fresh SQLite file is created by one process
        return RetryingRDBStorage(
            spec.optuna_storage,
            retry_s=spec.search.store_retry_s,
            heartbeat_interval=beat,
            grace_period=2 * beat,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                max_retry=spec.search.retries
            ),
        )
