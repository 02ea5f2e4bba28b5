"""Small pieces of the runner and the spec that the end-to-end tests do not pin down."""

from __future__ import annotations

import pytest

from sweeps import runner
from sweeps.errors import StudyError
from sweeps.spec import load_spec
from tests.helpers import small_study, write_study


def test_worker_seeds_differ_per_host_and_stay_in_range(monkeypatch, tmp_path):
    spec = load_spec(write_study(tmp_path, small_study(seed=2**32 - 1)))
    monkeypatch.delenv("MTL_WORKER_INDEX", raising=False)
    assert runner.worker_index(worker=False) == 0
    seen = set()
    for host in ("3f9a1c2b4d5e", "a81c77e0f012"):
        monkeypatch.setattr(runner.socket, "gethostname", lambda host=host: host)
        seen.add(runner.worker_index(worker=True))
        sampler = runner.make_sampler(
            spec, offset=10**6, worker=True
        )  # would overflow without the modulo
        assert sampler is not None
    assert len(seen) == 2 and 0 not in seen
    monkeypatch.setenv("MTL_WORKER_INDEX", "3")
    assert runner.worker_index(worker=True) == 3


def test_store_uris_expand_environment_variables(monkeypatch, tmp_path):
    study = small_study(storage="postgresql://u:${MTL_TEST_PW}@db:5432/optuna")
    path = write_study(tmp_path, study)
    monkeypatch.delenv("MTL_TEST_PW", raising=False)
    with pytest.raises(StudyError, match="storage.*MTL_TEST_PW is not set"):
        load_spec(path)
    monkeypatch.setenv("MTL_TEST_PW", "pw")
    assert load_spec(path).optuna_storage == "postgresql://u:pw@db:5432/optuna"


def test_default_stores_live_in_the_workdir(tmp_path):
    spec = load_spec(write_study(tmp_path, small_study(workdir="runs")))
    assert spec.tracking == f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    assert spec.optuna_storage == f"sqlite:///{tmp_path / 'runs' / 'optuna.db'}"
    assert spec.embedded


def test_only_connection_failures_are_retried_as_transient():
    from sweeps.tracking import _transient

    run_dir = "/x/artifacts/8f9f1dd4f5e54c02b50288bdc6af63bb"  # "502" among a run id's digits
    assert not _transient(NotADirectoryError(f"[Errno 20] Not a directory: '{run_dir}'"))
    assert not _transient(ValueError("Invalid parameter 'lr'"))
    assert _transient(Exception("failed with error code 503 != 200"))
    assert _transient(Exception("HTTPConnectionPool(...): Max retries exceeded"))
    assert _transient(ConnectionRefusedError("[Errno 111] Connection refused"))
