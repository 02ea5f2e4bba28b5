"""sweeps.interrupts in process: under ``stop_on_signals`` a SIGTERM inside a store call waits
for the call to end, then stops the command as Ctrl-C does; a second signal during the
clean-up is noted, not raised; the previous handlers come back afterwards."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time

import pytest

from sweeps import interrupts


@pytest.fixture(autouse=True)
def _main_thread():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")


def test_sigterm_in_a_store_call_waits_then_stops_and_a_second_is_noted(capfd):
    before = signal.getsignal(signal.SIGTERM)
    with interrupts.stop_on_signals():
        with pytest.raises(KeyboardInterrupt):
            with interrupts.atomic():
                os.kill(os.getpid(), signal.SIGTERM)
                reached_the_end_of_the_call = True  # the signal waited
        assert reached_the_end_of_the_call
        assert interrupts.stopping() and interrupts.stopped_by() == "SIGTERM"
        assert interrupts.exit_code() == 143
        os.kill(os.getpid(), signal.SIGINT)  # during the clean-up: noted, not raised
        with interrupts.atomic():
            pass  # a pending signal is not raised again at the next store call
    assert "send it again to stop at once" in capfd.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's handler is back


def test_ctrl_c_outside_a_store_call_stops_at_once():
    with interrupts.stop_on_signals():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
        assert interrupts.stopped_by() == "Ctrl-C" and interrupts.exit_code() == 130


class _Finalised:
    """An object whose finaliser is where the signal lands."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs here, inside __del__
            pass


def test_a_signal_landing_in_a_finaliser_is_kept_and_raised_at_the_next_safe_point(capfd):
    # Python drops an exception raised in a __del__ or a weakref callback ("Exception ignored
    # in ..."): a Ray worker's SIGTERM landed in one under load and the worker trained on
    with interrupts.stop_on_signals():
        _Finalised()  # collected at once: its __del__ receives the signal
        assert not interrupts.stopping()  # not raised there (it would have been lost)
        with pytest.raises(KeyboardInterrupt):
            interrupts.raise_pending()  # an epoch's end, or the next store call
        assert interrupts.stopped_by() == "SIGTERM" and interrupts.exit_code() == 143
    assert "Exception ignored" not in capfd.readouterr().err


def test_a_signal_landing_in_any_weakref_callback_is_kept_too():
    # the second place seen: SQLAlchemy's own weakref callback, outside the weakref module
    import weakref  # (only this test)

    class Target:
        pass

    def callback(_ref) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            pass

    with interrupts.stop_on_signals():
        target = Target()
        ref = weakref.ref(target, callback)
        del target  # the callback runs now, and receives the signal
        assert ref() is None and not interrupts.stopping()
        with pytest.raises(KeyboardInterrupt):
            interrupts.raise_pending()
        assert interrupts.stopped_by() == "Ctrl-C"


def _stop_with_sigterm() -> None:
    """Under ``stop_on_signals``: a SIGTERM outside any store call stops the command."""
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # (the signal is raised here)
    assert interrupts.stopping()


def test_a_stopping_command_waits_briefly_for_a_store_that_does_not_answer(tmp_path, monkeypatch):
    # a fresh-clone CI run: a stopped helper retried a locked Optuna file for 120 s, twice
    import optuna

    from sweeps.optuna_storage import RetryingRDBStorage

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = RetryingRDBStorage(url, retry_s=120)
    trial_id = storage.create_new_trial(
        storage.create_new_study([optuna.study.StudyDirection.MINIMIZE])
    )
    holder = sqlite3.connect(tmp_path / "optuna.db")  # another process's write lock, held
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(interrupts, "STOPPING_RETRY_S", 1.0)
    try:
        with interrupts.stop_on_signals():
            _stop_with_sigterm()
            assert interrupts.retry_budget(120, time.monotonic()) <= 1.0
            started = time.monotonic()
            with pytest.raises(optuna.exceptions.StorageInternalError) as raised:
                storage.set_trial_user_attr(trial_id, "reason", "interrupted")
            waited = time.monotonic() - started
        assert "database is locked" in str(raised.value.__cause__)
        assert waited < 30, waited  # one try at the lock (SQLite waits 5 s) and a retry or two
        with interrupts.stop_on_signals():  # the next command, not stopping: store_retry_s
            assert interrupts.retry_budget(120, time.monotonic()) == 120
    finally:
        holder.rollback()
        holder.close()
    storage.set_trial_user_attr(trial_id, "reason", "interrupted")  # the lock gone: written
    assert storage.get_trial(trial_id).user_attrs["reason"] == "interrupted"


def test_a_stopping_command_gives_up_on_a_tracking_server_that_is_gone_soon(monkeypatch):
    from mlflow.tracking import MlflowClient

    from sweeps.tracking import RetryingClient, TrackingUnavailable
    from tests.helpers import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries: none
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens: refused at once
    client = RetryingClient(MlflowClient(uri), uri, retry_s=120)
    monkeypatch.setattr(interrupts, "STOPPING_RETRY_S", 1.0)
    with interrupts.stop_on_signals():
        _stop_with_sigterm()
        started = time.monotonic()
        with pytest.raises(
            TrackingUnavailable,
            match="the command is stopping: stores are waited for 1 s after the signal",
        ):
            client.create_experiment("late")
        waited = time.monotonic() - started
    assert waited < 30, waited  # a retry or two, not store_retry_s (120)


def test_a_stopped_command_starts_no_new_trial_and_the_next_command_is_not_stopped():
    # a store error raised while the interrupted trial was recorded used to replace the
    # interrupt; Optuna caught it as one failed trial and the worker trained on
    with interrupts.stop_on_signals():
        interrupts.raise_if_stopped()  # not stopped: nothing
        _stop_with_sigterm()
        try:
            raise RuntimeError("the store failed while the trial was recorded")
        except RuntimeError:
            pass  # the interrupt is gone: only the flag is left
        with pytest.raises(KeyboardInterrupt):
            interrupts.raise_if_stopped()  # the loop's next turn stops
    assert not interrupts.stopping()  # after the command: an in-process caller goes on
    interrupts.raise_if_stopped()
    assert interrupts.exit_code() == 143  # what the command line reports after it
