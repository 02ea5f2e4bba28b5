"""Fixtures: a fresh PostgreSQL database per test where one is reachable, and a private
cluster for a test that restarts one. Under pytest-xdist, each worker's torch (and every
process it starts) gets its share of the cores: two workers of two OpenMP threads each on two
cores spend their time spinning, not training."""

from __future__ import annotations

import os
import tempfile
import uuid

import pytest

_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:  # before torch is imported, so its thread pool is sized by it
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    _share = str(max(1, (_cores or 1) // _WORKERS))
    os.environ.setdefault("OMP_NUM_THREADS", _share)
    os.environ.setdefault("MKL_NUM_THREADS", _share)

# the empty MLflow store new stores are copied from (sweeps/sqlite_template.py): the tests'
# own, not the user's ~/.cache; shared by the workers and the processes the tests start
os.environ.setdefault(
    "MTL_SWEEPS_CACHE", os.path.join(tempfile.gettempdir(), f"mtl-sweeps-tests-{os.getuid()}")
)

# PostgreSQL --------------------------------------------------------------------------------

PG_URL = os.environ.get("MTL_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _require_postgres() -> None:
    problem = _postgres_reachable()
    if problem:
        if os.environ.get("MTL_REQUIRE_POSTGRES") == "1":
            pytest.fail(
                f"PostgreSQL is required (MTL_REQUIRE_POSTGRES=1) but {PG_URL} is unreachable: {problem}"
            )
        pytest.skip(
            f"no PostgreSQL reachable at {PG_URL} ({problem}); set MTL_POSTGRES_URL or start one"
        )


def _databases():
    """A factory of fresh, empty databases, each dropped when the fixture ends."""
    import psycopg

    created: list[str] = []

    def make() -> str:
        name = f"mtl_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return PG_URL.rsplit("/", 1)[0] + f"/{name}"

    yield make
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_db():
    """A fresh, empty PostgreSQL database; a factory, so a test can ask for several."""
    _require_postgres()
    yield from _databases()


@pytest.fixture(scope="module")
def module_postgres_db():
    """As ``postgres_db``, for a module's shared stores (an MLflow server's backend)."""
    _require_postgres()
    yield from _databases()


@pytest.fixture(scope="module")
def server(tmp_path_factory, module_postgres_db):
    """One MLflow server (`sweeps server`) on its own database for the module's studies: each
    test's study has a name of its own, so each has an experiment of its own."""
    from sweeps.server import launch_tracking_server, stop_group  # (mlflow: when asked for)
    from tests.helpers import free_port

    folder = tmp_path_factory.mktemp("server")
    proc, url = launch_tracking_server(module_postgres_db(), folder / "artifacts", free_port())
    try:
        yield url
    finally:
        stop_group(proc)


class PrivateCluster:
    """A PostgreSQL cluster of the test's own (initdb in a temporary folder, a free port on
    127.0.0.1), for a test that restarts the server: the shared cluster other tests use, in
    this process or a parallel worker, is left alone."""

    def __init__(self) -> None:
        import glob
        import shutil
        import socket
        import tempfile

        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        found = bins[-1] if bins else shutil.which("initdb")
        if found is None:
            if os.environ.get("MTL_REQUIRE_POSTGRES") == "1":
                pytest.fail("a private PostgreSQL cluster needs initdb (postgresql-NN)")
            pytest.skip("no initdb to start a private PostgreSQL cluster")
        self.bin = os.path.dirname(found)
        # postgres refuses to run as root: as root, the cluster belongs to the postgres user
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.folder = tempfile.mkdtemp(prefix="mtl_pg_")
        if self.as_user:
            shutil.chown(self.folder, "postgres", "postgres")
        self.data = os.path.join(self.folder, "data")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.folder, "log"), "-o",
                  options, "-w", "start")  # fmt: skip
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        import subprocess

        done = subprocess.run(
            [*self.as_user, os.path.join(self.bin, tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            pytest.fail(f"{tool} failed: {done.stdout[-1000:]}{done.stderr[-1000:]}")

    def database(self) -> str:
        import psycopg

        name = f"mtl_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def restart(self) -> None:
        # with its log named, or the server would hold this call's output pipe open
        self._run(
            "pg_ctl", "-D", self.data, "-l", os.path.join(self.folder, "log"), "-w", "restart"
        )

    def remove(self) -> None:
        import shutil

        self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def private_postgres():
    """A PostgreSQL cluster this test alone uses, stopped and removed after it."""
    cluster = PrivateCluster()
    try:
        yield cluster
    finally:
        cluster.remove()


# Scheduling ---------------------------------------------------------------------------------

# the files that take longest (real processes, servers, whole studies; `--durations=0` on
# 2026-12-07), run first: `--dist loadfile` hands out files in collection order, and a long
# file started last kept one worker busy while the other had nothing left to do
SLOW_FIRST = (
    "tests/sweeps/test_faults.py",
    "tests/sweeps/test_distributed.py",
    "tests/dashboards/test_browser.py",
    "tests/sweeps/test_ray.py",
    "tests/sweeps/test_server.py",
    "tests/test_gallery.py",
    "tests/sweeps/test_search.py",
    "tests/sweeps/test_run_paths.py",
    "tests/sweeps/test_evidence.py",
    "tests/sweeps/test_read_only.py",
    "tests/sweeps/test_method_grid.py",
    "tests/sweeps/test_known_truth.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow files first, each file's tests in their own order (a stable sort, the same on
    every worker, as xdist requires)."""
    rank = {path: n for n, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
