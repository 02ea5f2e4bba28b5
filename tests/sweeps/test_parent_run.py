"""sweeps.parent_run: the process that created the Optuna study creates its MLflow parent run
and `baselines` group, once; a process that joined a fresh study waits for the creator's runs
instead of making its own (two workers started together left two study runs: CI's red stop 31).
Real SQLite stores, the two processes as threads."""

from __future__ import annotations

import os
import signal
import threading
import time

import optuna
import pytest

from sweeps import interrupts, record, runner
from sweeps.parent_run import ABANDONED, PENDING, creating, parent_run
from sweeps.resume_checks import PARENT_RUN
from sweeps.runner import open_or_create
from sweeps.spec import load_spec
from sweeps.tracking import Tracker
from tests.helpers import small_study, write_study

PARAMS = {"seed": 0}


def _study(tmp_path, name="racy", pending=True) -> tuple[str, str]:
    """A fresh study whose creator is at work (``pending``: as ``open_or_create`` marks it)."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name=name, storage=storage)
    if pending:
        study.set_user_attr(PENDING, time.time())
    return storage, f"sqlite:///{tmp_path / 'mlflow.db'}"


def _runs(tracker: Tracker, kind: str) -> list:
    return tracker.search(record.of_kind(kind, **{record.STUDY: "racy"}))


def test_a_joiner_waits_for_the_creators_runs_and_makes_none_of_its_own(tmp_path, capsys):
    storage, tracking = _study(tmp_path)
    creator_tracker, joiner_tracker = Tracker(tracking, "racy"), Tracker(tracking, "racy")
    ids: dict[str, str] = {}

    def creator() -> None:
        time.sleep(1.0)  # the joiner looks first and finds nothing yet
        study = optuna.load_study(study_name="racy", storage=storage)
        ids["creator"] = parent_run("racy", study, creator_tracker, True, PARAMS)

    thread = threading.Thread(target=creator)
    thread.start()
    started = time.monotonic()
    joined = optuna.load_study(study_name="racy", storage=storage)
    ids["joiner"] = parent_run("racy", joined, joiner_tracker, False, PARAMS)
    waited = time.monotonic() - started
    thread.join()
    assert ids["joiner"] == ids["creator"]
    assert waited >= 1.0  # it waited for the creator rather than creating a run at once
    assert [r.info.run_id for r in _runs(joiner_tracker, record.STUDY_RUN)] == [ids["creator"]]
    (group,) = _runs(joiner_tracker, record.GROUP)
    assert group.data.tags["mlflow.parentRunId"] == ids["creator"]
    assert joined.user_attrs[PARENT_RUN] == ids["creator"]
    assert "warning" not in capsys.readouterr().err


def test_a_creator_that_never_opens_the_record_is_waited_for_then_replaced(tmp_path, capsys):
    storage, tracking = _study(tmp_path)
    tracker = Tracker(tracking, "racy")
    study = optuna.load_study(study_name="racy", storage=storage)
    started = time.monotonic()
    parent = parent_run("racy", study, tracker, False, PARAMS, wait_s=0.5)
    assert 0.5 <= time.monotonic() - started < 30
    err = capsys.readouterr().err
    assert (
        "study 'racy' was created by another process that has not opened its MLflow record" in err
    )
    assert [r.info.run_id for r in _runs(tracker, record.STUDY_RUN)] == [parent]
    assert len(_runs(tracker, record.GROUP)) == 1


def test_a_creator_that_failed_says_so_and_the_next_run_does_not_wait(tmp_path):
    # a first `sweeps run` whose tracking server did not answer, or that was stopped, before
    # it made the study's runs: the next one starts at once
    storage, tracking = _study(tmp_path)
    study = optuna.load_study(study_name="racy", storage=storage)
    with pytest.raises(KeyboardInterrupt):
        with creating(study, created=False):  # a joiner's failure marks nothing
            raise KeyboardInterrupt
    assert ABANDONED not in study.user_attrs
    with pytest.raises(RuntimeError, match="the tracking store did not answer"):
        with creating(study, created=True):
            raise RuntimeError("the tracking store did not answer")
    assert study.user_attrs[ABANDONED] is True
    started = time.monotonic()
    parent = parent_run("racy", study, Tracker(tracking, "racy"), False, PARAMS, wait_s=60)
    assert time.monotonic() - started < 10  # ... and the next run did not wait 60 s
    assert study.user_attrs[PARENT_RUN] == parent


def test_a_study_no_creator_marked_is_waited_for_briefly(tmp_path, monkeypatch, capsys):
    # made by an older version (whose first run failed before its first trial) or by
    # `optuna create-study`: nobody will name its run, so a joiner does not wait wait_s
    monkeypatch.setattr("sweeps.parent_run.PENDING_GRACE_S", 0.5)
    storage, tracking = _study(tmp_path, pending=False)
    study = optuna.load_study(study_name="racy", storage=storage)
    started = time.monotonic()
    parent = parent_run("racy", study, Tracker(tracking, "racy"), False, PARAMS, wait_s=60)
    assert 0.5 <= time.monotonic() - started < 10
    assert study.user_attrs[PARENT_RUN] == parent and "warning" not in capsys.readouterr().err


def test_the_creator_marks_the_study_at_once(tmp_path):
    spec = load_spec(write_study(tmp_path, small_study("racy")))
    study, created = open_or_create(spec)
    assert created and abs(study.user_attrs[PENDING] - time.time()) < 60
    joined, created = open_or_create(spec)
    assert not created and joined.user_attrs[PENDING] == study.user_attrs[PENDING]


def test_a_resumed_study_is_not_waited_for(tmp_path):
    storage, tracking = _study(tmp_path)
    tracker = Tracker(tracking, "racy")
    study = optuna.load_study(study_name="racy", storage=storage)
    first = parent_run("racy", study, tracker, True, PARAMS)
    started = time.monotonic()
    again = parent_run("racy", study, Tracker(tracking, "racy"), False, PARAMS, wait_s=60)
    assert again == first and time.monotonic() - started < 10
    assert len(_runs(tracker, record.STUDY_RUN)) == 1 and len(_runs(tracker, record.GROUP)) == 1


def test_only_the_call_that_creates_the_study_is_its_creator(tmp_path, monkeypatch):
    spec = load_spec(write_study(tmp_path, small_study("racy")))
    study, created = open_or_create(spec)
    assert created
    assert open_or_create(spec)[1] is False  # found there
    # one that looked before the study existed and lost the race to create it: a joiner,
    # drawing as a worker does
    real_load = optuna.load_study

    def looked_too_early(*args, **kwargs):
        monkeypatch.setattr(optuna, "load_study", real_load)
        raise KeyError("racy")

    drawn_as_worker = []

    def make_sampler(spec, offset, worker=False):
        drawn_as_worker.append(worker)
        return real_make_sampler(spec, offset, worker)

    real_make_sampler = runner.make_sampler
    monkeypatch.setattr(runner, "make_sampler", make_sampler)
    monkeypatch.setattr(optuna, "load_study", looked_too_early)
    lost, created = open_or_create(spec)
    assert created is False and lost._study_id == study._study_id
    assert drawn_as_worker == [False, True]  # the failed create's sampler, then the joiner's


def test_a_sigterm_while_waiting_stops_the_command(tmp_path):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    storage, tracking = _study(tmp_path)
    study = optuna.load_study(study_name="racy", storage=storage)
    tracker = Tracker(tracking, "racy")
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    started = time.monotonic()
    with interrupts.stop_on_signals():
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            parent_run("racy", study, tracker, False, PARAMS, wait_s=60)
        assert interrupts.stopped_by() == "SIGTERM"
    assert time.monotonic() - started < 10
    assert _runs(tracker, record.STUDY_RUN) == []  # a stopped joiner created nothing
