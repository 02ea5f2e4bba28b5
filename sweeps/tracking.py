"""The one adapter that writes MLflow: experiment, study run, trial and baseline runs.

Writes go through ``log_batch`` (1,000 metrics, 100 params, 100 tags a request): on SQLite
that is 45-65x faster than one ``log_metric`` per value. MLflow is imported here only.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from sweeps import interrupts, record
from sweeps.interrupts import atomic, retry_budget
from sweeps.masking import mask
from sweeps.sqlite_stores import mlflow_client
from sweeps.store_faults import unwritable

if TYPE_CHECKING:
    from sweeps.schema import StudySpec

logging.getLogger("mlflow").setLevel(logging.WARNING)  # no INFO lines about creating tables
# MLflow logs each failed database call with its traceback, then raises it: sweeps reports it
# once, in a line (a full disk printed a traceback per write)
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
# against a server, MLflow prints "View run ... at: URL" on every run it ends: sweeps has its own
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

# MLflow's own HTTP retries would wait minutes on a dead server before our deadline could act
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")

MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
TRANSIENT = (
    "Max retries exceeded",
    "Connection refused",
    "Connection aborted",
    "Connection reset",
    "Read timed out",
    "RemoteDisconnected",
    "Remote end closed",
    "server closed the connection",
    "could not connect to server",
    "connection to server",
    "terminating connection",
    "OperationalError",
)
# an error that escaped the tracking API's handlers: Flask's bare page, no JSON (MLflow's own
# errors are JSON). Seen when PostgreSQL restarted under a request: the rollback of MLflow's
# nested session raised again, and a trial failed on it (2 test runs in about 16 under load).
# Only for the tracking API: the artifact proxy answers a full or read-only volume the same
# way, and an unwritable artifact store costs the files, not the sweep
BARE_500 = "<title>500 Internal Server Error</title>"
TRACKING_API = "API request to endpoint /api/2.0/mlflow/"


class TrackingUnavailable(RuntimeError):
    """The tracking store did not answer within the study's ``search.store_retry_s``."""


class RetryingClient:
    """``MlflowClient`` whose calls are retried with exponential backoff (0.5 s doubling to
    8 s) while the store is unreachable, for at most ``retry_s`` seconds per call; then
    ``TrackingUnavailable``, and every later call fails at once (the process stops cleanly
    instead of waiting again for each write)."""

    def __init__(self, client: MlflowClient, uri: str, retry_s: float) -> None:
        self._client, self._uri, self.retry_s = client, uri, retry_s
        self.down: TrackingUnavailable | None = None
        self._said = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._call(attr, args, kwargs)

        return call

    def _call(self, fn, args, kwargs) -> Any:
        if self.down is not None:
            raise self.down
        started, wait = time.monotonic(), 0.5
        while True:
            try:
                with atomic():  # Ctrl-C waits for the write in progress
                    return fn(*args, **kwargs)
            except Exception as exc:
                cause = unwritable(exc)
                if cause is not None:  # a full disk, a read-only file system: no wait cures it
                    self.down = TrackingUnavailable(
                        f"the tracking store {mask(self._uri)} cannot be written ({cause}): "
                        "free space or make it writable, then run the study again; trials "
                        "completed so far keep their record"
                    )
                    raise self.down from None
                if not _transient(exc):
                    raise
                waited = time.monotonic() - started
                budget = retry_budget(self.retry_s, started)  # shorter once a signal stops us
                if waited >= budget:
                    self.down = TrackingUnavailable(
                        f"the tracking store {mask(self._uri)} did not answer for "
                        f"{waited:.0f} s ({_limit(budget, self.retry_s)}): "
                        f"{_first_line(exc)}. Trials completed so far keep their record; "
                        "run the study again once the store is back"
                    )
                    raise self.down from None
                if not self._said:
                    self._said = True
                    print(
                        mask(
                            f"warning: the tracking store {self._uri} does not answer "
                            f"({_first_line(exc)[:200]}); retrying for up to {self.retry_s:g} s "
                            "(search.store_retry_s)"
                        ),
                        file=sys.stderr,
                        flush=True,
                    )
                time.sleep(min(wait, max(0.0, budget - waited)))
                wait = min(wait * 2, 8.0)


def _limit(budget: float, retry_s: float) -> str:
    if budget < retry_s:
        limit = interrupts.STOPPING_RETRY_S
        return f"the command is stopping: stores are waited for {limit:g} s after the signal"
    return f"search.store_retry_s: {retry_s:g}"


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    text = f"{type(exc).__name__}: {exc}"
    if any(marker in text for marker in TRANSIENT):
        return True
    if BARE_500 in text and TRACKING_API in text:
        return True
    # a gateway or an overloaded server: HTTP 502/503/504 as a whole word (a run id may
    # contain "502" among its hex digits)
    return re.search(r"(?<![0-9A-Za-z])50[234](?![0-9A-Za-z])", text) is not None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


PARAM_LIMIT = 6000  # MLflow's limit on a param value's length


class Tracker:
    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        artifact_root: Path | None = None,
        retry_s: float = 120.0,
    ) -> None:
        client = mlflow_client(tracking_uri)  # one process creates a fresh file
        self.client: Any = RetryingClient(client, tracking_uri, retry_s)
        self._artifact_warned = False
        self.uri = tracking_uri
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            location = artifact_root.as_uri() if artifact_root else None
            try:
                self.experiment_id = self.client.create_experiment(
                    experiment, artifact_location=location, tags=record.EXPERIMENT_KIND
                )
            except Exception:  # another worker created it first
                found = self.client.get_experiment_by_name(experiment)
                if found is None:
                    raise
                self.experiment_id = found.experiment_id
        else:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            self.experiment_id = found.experiment_id
            for key, value in record.EXPERIMENT_KIND.items():  # a study begun before the tag
                if found.tags.get(key) != value:
                    self.client.set_experiment_tag(self.experiment_id, key, value)

    # runs ---------------------------------------------------------------------------------

    def study_run(self, name: str, params: Mapping[str, Any], reopen: bool = True) -> str:
        """The study's parent run: found again by its tag, created on the first start, and
        marked RUNNING again when ``reopen``."""
        tags = {record.KIND: record.STUDY_RUN, record.STUDY: name}
        description = (
            f"Study {name}: its trials, confirm runs and (under `baselines`) the single-task "
            "baselines they are compared with. The verdict replaces this text when the study "
            "is complete."
        )
        run, created = self._one_run(f"study {name}", tags, description)
        if created:
            self.log(run.info.run_id, params=params)
        elif reopen and run.info.status != "RUNNING":
            self.client.update_run(run.info.run_id, status="RUNNING")
        return run.info.run_id

    def group_run(self, study_run: str, study: str, group: str, description: str) -> str:
        """A run under the study's that only holds others (``group``: "baselines"), so the
        trial list stays readable; it is FINISHED from the start."""
        tags = {
            record.KIND: record.GROUP,
            record.STUDY: study,
            record.GROUP_OF: group,
            "mlflow.parentRunId": study_run,
        }
        run, created = self._one_run(group, tags, description)
        if created:
            self.client.set_terminated(run.info.run_id, status="FINISHED")
        return run.info.run_id

    def _one_run(self, name: str, tags: Mapping[str, str], description: str) -> tuple[Any, bool]:
        """The run with these tags, found again or created (and whether this call created it).
        Workers creating it at the same moment may each make one: the earliest stays, the
        others are deleted."""
        query = record.where({k: v for k, v in tags.items() if k != "mlflow.parentRunId"})
        runs = self.search(query)
        created = None
        if not runs:
            created = self.client.create_run(
                self.experiment_id,
                run_name=name,
                tags={**tags, record.DESCRIPTION: description},
            ).info.run_id
            runs = self.search(query)
        first = min(runs, key=lambda r: (r.info.start_time, r.info.run_id))
        if created is not None and first.info.run_id != created:
            self.client.delete_run(created)
        return first, created is not None and first.info.run_id == created

    def start_run(
        self, name: str, parent: str | None, tags: Mapping[str, str], params: Mapping[str, Any]
    ) -> str:
        all_tags = dict(tags)
        if parent:
            all_tags["mlflow.parentRunId"] = parent
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        self.log(run.info.run_id, params=params)
        return run.info.run_id

    def end_run(
        self,
        run_id: str,
        status: str = "FINISHED",
        tags: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        """Close a run; ``name``: its new name (a pruned trial's says so)."""
        if tags:
            self.log(run_id, tags=tags)
        self.client.set_terminated(run_id, status=status)
        if name:
            self.client.update_run(run_id, name=name)

    def log(
        self,
        run_id: str,
        metrics: Iterable[tuple[str, float, int]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Metrics as (key, value, step) triples, params and tags, in as few requests as the
        limits of ``log_batch`` allow."""
        now = int(time.time() * 1000)
        m = [Metric(k, float(v), now, int(s)) for k, v, s in metrics]
        p = [Param(k, _param_value(v)) for k, v in (params or {}).items()]
        t = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        while m or p or t:
            self.client.log_batch(
                run_id, metrics=m[:MAX_METRICS], params=p[:MAX_PARAMS], tags=t[:MAX_TAGS]
            )
            m, p, t = m[MAX_METRICS:], p[MAX_PARAMS:], t[MAX_TAGS:]

    def log_artifact(self, run_id: str, path: Path, folder: str | None = None) -> bool:
        """Store a file (or a folder's files, under ``folder``) with the run. An artifact store that cannot be written (read-only,
        full, misconfigured) costs the file, not the run: a warning on stderr (once per
        process), the reason in the run's ``mtl.artifact_error`` tag; False is returned."""
        try:
            if Path(path).is_dir():
                self.client.log_artifacts(run_id, str(path), folder)
            else:
                self.client.log_artifact(run_id, str(path), folder)
            return True
        except TrackingUnavailable:
            raise
        except Exception as exc:
            reason = mask(f"{type(exc).__name__}: {_first_line(exc)}")
            if not self._artifact_warned:
                self._artifact_warned = True
                print(
                    f"warning: the artifact store cannot be written ({reason}); metrics, "
                    "params and tags are still recorded",
                    file=sys.stderr,
                    flush=True,
                )
            self.log(run_id, tags={record.ARTIFACT_ERROR: f"{Path(path).name}: {reason}"[:5000]})
            return False

    # queries ------------------------------------------------------------------------------

    def search(self, filter_string: str) -> list:
        """Every run of the experiment matching the filter (retried, page by page)."""
        return record.search_all(self.client, self.experiment_id, filter_string)

    def find_baseline(self, key: str) -> Any | None:
        """A finished baseline run recorded under this key, or None."""
        runs = self.search(
            record.of_kind(record.BASELINE, "FINISHED", **{record.BASELINE_KEY: key})
        )
        return min(runs, key=lambda r: r.info.start_time) if runs else None


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= PARAM_LIMIT else text[: PARAM_LIMIT - 3] + "..."


def open_tracker(spec: StudySpec) -> Tracker:
    """The study's tracker. Artifacts go where the MLflow server sends them when there is one
    (``http(s)://``); otherwise to the study's ``workdir/artifacts``, for an embedded store and
    a database URI alike (MLflow's own default, ``./mlruns``, is wherever the command ran)."""
    served = spec.tracking.split("://", 1)[0].lower() in ("http", "https", "databricks")
    artifacts = None if served else spec.workdir_path / "artifacts"
    if spec.embedded:
        spec.workdir_path.mkdir(parents=True, exist_ok=True)
    return Tracker(spec.tracking, spec.name, artifacts, spec.search.store_retry_s)
