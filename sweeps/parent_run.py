"""The study's MLflow parent run, and its `baselines` group under it, have one creator: the
process whose Optuna storage created the study (a unique study name there makes that atomic).

Workers started together on a fresh study used to create the parent run side by side, each
then keeping the earliest by start time. A start time is taken by the client before the run
is written, so a worker that looked before the other's run was visible kept its own, and the
study ended with two parent runs (CI's red stop 31, on a tracking server under load). Now the
creator writes both runs, then names the parent in the study's user attribute
``mlflow_parent_run_id``; a process that joined a fresh study waits for that name before it
looks the run up. The creator says it is at work at once (``mlflow_parent_run_pending``,
written just after the study): a study without that mark (made by an older version, or by
``optuna create-study``) is waited for ``PENDING_GRACE_S`` only. A creator that fails before
naming the run (its tracking store does not answer, a refusal, Ctrl-C) says so in
``mlflow_parent_run_abandoned`` (``creating``), and the next process does not wait; one that is
killed outright is waited for ``wait_s`` (at least ``search.store_retry_s``, which the
creator's own store calls may take), then the joiner looks the runs up or creates them itself,
saying so."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

import optuna

from sweeps.interrupts import raise_if_stopped
from sweeps.resume_checks import PARENT_RUN

PENDING = "mlflow_parent_run_pending"  # Optuna study user attribute: its creator is at work
ABANDONED = "mlflow_parent_run_abandoned"  # ... and failed before it named the run
PUBLISH_WAIT_S = 120.0  # the creator opens the MLflow store first: a fresh one migrates
PENDING_GRACE_S = 10.0  # the creator writes PENDING right after the study
POLL_S = 0.25


def publish_wait(store_retry_s: float) -> float:
    """How long a joiner waits for the creator: its store calls are retried this long."""
    return max(PUBLISH_WAIT_S, store_retry_s)


def baselines_description(study: str) -> str:
    return (
        f"The single-task baselines of study {study}: one run per task, settings key and "
        "seed, trained once and reused by every trial that needs it (tag `mtl.baseline_key`)."
    )


def parent_run(
    name: str,
    study: optuna.Study,
    tracker: Any,
    created: bool,
    params: Mapping[str, Any],
    wait_s: float = PUBLISH_WAIT_S,
) -> str:
    """The id of study ``name``'s parent run, found again, or created when ``created`` (this
    process created the Optuna study); named in the study's user attributes."""
    attrs = study.user_attrs
    if (
        not created
        and PARENT_RUN not in attrs
        and ABANDONED not in attrs
        and not study.get_trials(deepcopy=False)
    ):
        _await_creator(name, study, wait_s)
    parent = tracker.study_run(name, params)
    tracker.group_run(parent, name, "baselines", baselines_description(name))
    study.set_user_attr(PARENT_RUN, parent)
    return parent


@contextlib.contextmanager
def creating(study: optuna.Study, created: bool) -> Iterator[None]:
    """Around what the study's creator does before ``parent_run`` names the run: if it fails,
    the study says so, so that the next process does not wait ``wait_s`` for it."""
    try:
        yield
    except BaseException:
        if created:
            with contextlib.suppress(Exception):  # (the storage may be what failed)
                study.set_user_attr(ABANDONED, True)
        raise


def _await_creator(name: str, study: optuna.Study, wait_s: float) -> None:
    started = time.monotonic()
    said = False
    while not {PARENT_RUN, ABANDONED} & set(attrs := study.user_attrs):
        raise_if_stopped()
        waited = time.monotonic() - started
        if PENDING not in attrs and waited >= PENDING_GRACE_S:
            return  # no creator at work: a study made by an older version, or by Optuna
        if waited >= wait_s:
            print(
                f"warning: study {name!r} was created by another process that has not opened "
                f"its MLflow record after {waited:.0f} s; this one opens it",
                file=sys.stderr,
                flush=True,
            )
            return
        if not said and waited >= 10:
            said = True
            print(
                f"waiting for the process that created study {name!r} to open its MLflow record",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(POLL_S)
