"""Test helpers: small real studies on the example's review sentences, and the real CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import types
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SENTIMENT = ROOT / "examples" / "sentiment" / "data"


def small_study(name: str = "small", **sections) -> dict:
    """A quick study over the three review data sets (2 epochs, small hidden layer)."""
    task = {
        "header": False,
        "columns": ["text", "label"],
        "inputs": "text",
        "target": "label",
        "type": "binary",
        "metric": "f1",
    }
    study = {
        "name": name,
        "seed": 0,
        "tasks": {
            "imdb": {"path": str(SENTIMENT / "imdb_labelled.txt"), **task},
            "yelp": {"path": str(SENTIMENT / "yelp_labelled.txt"), **task},
            "amazon": {"path": str(SENTIMENT / "amazon_cells_labelled.txt"), **task},
        },
        "features": {"text": {"kind": "bow", "max_features": 2000, "vocabulary": "union"}},
        "model": {"hidden_size": 16},
        "training": {"epochs": 2, "batch_size": 64, "lr": 0.005},
        # no confirmation unless a test asks for it (tests/sweeps/test_evidence.py does);
        # every trial trains, even one repeating an earlier configuration (with `space: {}`
        # all do), unless a test asks for reuse (tests/sweeps/test_reuse.py does)
        "search": {
            "n_trials": 2,
            "sampler": "random",
            "pruner": "none",
            "space": {},
            "confirm": None,
            "reuse": False,
        },
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(study.get(key), dict):
            study[key] = {**study[key], **value}
        else:
            study[key] = value
    return study


def two_tasks(study: dict, names: tuple[str, ...] = ("imdb", "yelp")) -> dict:
    """``study`` with only the named review tasks (a study of ``small_study``)."""
    study["tasks"] = {k: v for k, v in study["tasks"].items() if k in names}
    return study


def runs_of(spec, kind: str) -> list:
    """Every MLflow run of ``kind`` (``mtl.kind``) in the study's experiment."""
    return runs_at(spec.tracking, spec.name, kind)


def runs_at(tracking: str, name: str, kind: str | None = None) -> list:
    """Every MLflow run (of ``kind``, when given) in experiment ``name`` of a tracking store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name(name).experiment_id
    query = f"tags.`mtl.kind` = '{kind}'" if kind else ""
    return client.search_runs([exp], query, max_results=1000)


def review_tasks(rows: int, metric: str, names: tuple[str, ...] = ("imdb", "yelp")) -> dict:
    """The first ``rows`` review sentences of each named domain, prepared for ``mtl_core.fit``."""
    from mtl_core.data.prepare import TaskFrame, prepare_tasks
    from mtl_core.data.readers import read_table

    frames = {
        name: TaskFrame(
            frame=read_table(
                SENTIMENT / f"{name}_labelled.txt", header=False, columns=["text", "label"]
            ).head(rows),
            inputs="text",
            target="label",
            type="binary",
            metric=metric,
        )
        for name in names
    }
    return prepare_tasks(frames)[0]


def write_study(folder: Path, study: dict, filename: str = "study.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def sweeps(*args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None):
    """Run the real command line in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "sweeps", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    """The command line in this process (typer's CliRunner), for what a function call proves
    (refusals, messages); ``sweeps()`` starts a real process for what only a process shows.
    Returns an object with ``returncode``, ``stdout`` and ``stderr``, as ``sweeps()`` does; an
    exception that escapes the command (a traceback a user would see) fails the test."""
    from typer.testing import CliRunner

    from sweeps.cli import app

    before = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    finally:
        os.chdir(before)
    return types.SimpleNamespace(
        returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr
    )


def assert_refused(result, needles: list[str], folder: Path) -> None:
    """A clean refusal: exit 2, every needle in the message, no traceback, no store written."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, f"{needle!r} not in {result.stderr!r}"
    assert not (folder / ".sweeps").exists(), "a refused study wrote a store"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium() -> str:
    """Debian's Chromium for the tests that open pages in a real browser; missing, the test
    skips (fails with MTL_REQUIRE_BROWSER=1, as .ci/run sets it)."""
    import shutil

    import pytest

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("MTL_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required (MTL_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("no chromium on PATH (apt-get install chromium); .ci/run installs it")
    return found


def browse(
    url: str, *flags: str, timeout: float = 60, tries: int = 2
) -> subprocess.CompletedProcess:
    """Headless Chromium on `url` with `flags` (`--dump-dom`, `--screenshot=...`), after the
    page's scripts ran for 20 s of virtual time; its profile a fresh folder, its calls home off.

    With --virtual-time-budget, Chromium waits for every request the page has in flight: one
    that never ends hangs it (CI's red stop 31: 180 s on the MLflow UI's study page; 25 reruns
    of that page under a CPU hog took 3-5 s each). A try that outlives `timeout` is stopped with
    its process group (TERM, then KILL) and tried again, with a warning that names the requests still open (from
    Chromium's net log); the last one's failure carries them and Chromium's stderr."""
    import signal
    import tempfile
    import warnings

    import pytest

    for attempt in range(1, tries + 1):
        with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
            netlog = Path(profile) / "net.json"
            command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                       f"--user-data-dir={profile}", "--disable-background-networking",
                       "--disable-component-update", "--no-first-run", f"--log-net-log={netlog}",
                       "--virtual-time-budget=20000", *flags, url]  # fmt: skip
            proc = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # its renderer and helpers go with it on a kill
            )
            try:
                out, err = proc.communicate(timeout=timeout)
                return subprocess.CompletedProcess(command, proc.returncode, out, err)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGTERM)  # its net log is written out on the way
                try:
                    _, err = proc.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    _, err = proc.communicate()
            message = (
                f"Chromium did not finish {url} in {timeout:.0f} s (try {attempt} of {tries}); "
                f"requests still open: {open_requests(netlog)}"
            )
            if attempt == tries:
                pytest.fail(f"{message}; its stderr ends:\n{err[-3000:]}")
            warnings.warn(f"{message}; trying again", stacklevel=2)
    raise AssertionError("unreachable")


def open_requests(netlog: Path) -> list[str]:
    """The URLs of the requests a stopped Chromium had sent and got no answer to, read from
    its net log (one event a line; a killed browser's file ends mid-array): begun, no response
    started, and not failed with an error of their own."""
    import json

    try:
        first, _, events = netlog.read_text(errors="replace").partition("\n")
        constants = json.loads(first.rstrip(",").removeprefix('{"constants":'))
    except (OSError, ValueError):
        return ["(no net log)"]
    name = {code: kind for kind, code in constants["logEventTypes"].items()}
    sent: dict[int, str] = {}
    done: set[int] = set()
    for line in events.splitlines():
        try:
            event = json.loads(line.strip().rstrip(","))
            source, kind = event["source"]["id"], name.get(event["type"])
            phase, params = event.get("phase"), event.get("params") or {}
        except (ValueError, KeyError, TypeError, AttributeError):  # not an event line
            continue
        if kind == "URL_REQUEST_START_JOB" and phase == 1:
            sent[source] = params.get("url", "")
        elif kind == "URL_REQUEST_DELEGATE_RESPONSE_STARTED" or "net_error" in params:
            done.add(source)
    return [url for source, url in sent.items() if source not in done and url.startswith("http")]
