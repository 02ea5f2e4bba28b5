"""Fixtures: a fresh PostgreSQL database per test where one is reachable."""

from __future__ import annotations

import os
import uuid

import pytest

# PostgreSQL --------------------------------------------------------------------------------

PG_URL = os.environ.get("MTL_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


@pytest.fixture
def postgres_db():
    """A fresh, empty PostgreSQL database; a factory, so a test can ask for several."""
    problem = _postgres_reachable()
    if problem:
        if os.environ.get("MTL_REQUIRE_POSTGRES") == "1":
            pytest.fail(
                f"PostgreSQL is required (MTL_REQUIRE_POSTGRES=1) but {PG_URL} is unreachable: {problem}"
            )
        pytest.skip(
            f"no PostgreSQL reachable at {PG_URL} ({problem}); set MTL_POSTGRES_URL or start one"
        )
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
