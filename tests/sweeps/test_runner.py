"""sweeps.runner: the pieces the end-to-end tests do not pin down (worker seeds)."""

from __future__ import annotations

from sweeps import runner
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
