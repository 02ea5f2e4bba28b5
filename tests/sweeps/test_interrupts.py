"""sweeps.interrupts in process: under ``stop_on_signals`` a SIGTERM inside a store call waits
for the call to end, then stops the command as Ctrl-C does; a second signal during the
clean-up is noted, not raised; the previous handlers come back afterwards."""

from __future__ import annotations

import os
import signal
import threading

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
