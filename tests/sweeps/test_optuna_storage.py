"""sweeps.optuna_storage: what counts as a dropped connection, on a real SQLite storage."""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy.exc

from sweeps.optuna_storage import RetryingRDBStorage, disconnected


def test_a_database_error_carries_no_written_values_so_they_cannot_read_as_an_outage(tmp_path):
    storage = RetryingRDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}", retry_s=1)
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    words = ("could not connect to server",)  # an outage's words in a value (a trial's reason)
    with storage.engine.connect() as connection, pytest.raises(sqlalchemy.exc.DBAPIError) as err:
        connection.exec_driver_sql("CREATE TABLE once (x TEXT UNIQUE)")
        connection.exec_driver_sql("INSERT INTO once VALUES (?)", words)
        connection.exec_driver_sql("INSERT INTO once VALUES (?)", words)  # refused
    assert "could not connect" not in str(err.value)  # hide_parameters: the value is not shown
    assert not disconnected(err.value)
    assert trial.number == 0
