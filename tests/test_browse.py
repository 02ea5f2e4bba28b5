"""The tests' browser helper: a Chromium that does not finish is killed, tried again with a
warning, and reported with its stderr; a page that loads comes back on the first try."""

from __future__ import annotations

import socket
import time

import pytest

from tests.helpers import browse


def test_a_page_that_loads_comes_back_on_the_first_try(tmp_path, recwarn):
    page = tmp_path / "page.html"
    page.write_text("<p id=x>0</p><script>setTimeout(() => x.textContent = 'ran', 5000)</script>")
    done = browse(page.as_uri(), "--dump-dom")
    assert '<p id="x">ran</p>' in done.stdout  # 5 s of the page's time, in less real time
    assert not [w for w in recwarn if "Chromium" in str(w.message)]


def test_a_browser_that_never_finishes_is_killed_tried_again_and_reported():
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        started = time.monotonic()
        with pytest.warns(UserWarning, match=r"did not finish .* \(try 1 of 2\); req.*again"):
            with pytest.raises(pytest.fail.Exception, match=r"try 2 of 2\).*its stderr ends"):
                browse(url, "--dump-dom", timeout=3)
    assert time.monotonic() - started < 40  # 2 tries of 3 s, each stopped within 10 s


def test_the_report_names_the_request_that_never_ended(tmp_path):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        never = f"http://127.0.0.1:{silent.getsockname()[1]}/never"
        page = tmp_path / "page.html"  # the page loads; one of its fetches never ends
        page.write_text(f"<p>loaded</p><script>fetch('{never}')</script>")
        with pytest.raises(pytest.fail.Exception) as failed:  # time to send it, under load too
            browse(page.as_uri(), "--dump-dom", timeout=12, tries=1)
    still_open = str(failed.value).split("requests still open: ", 1)[1].split("; its stderr", 1)[0]
    assert f"'{never}'" in still_open, still_open  # (beside it, at most Chromium's own calls)
