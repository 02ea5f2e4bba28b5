-- Runs once, when the postgres service starts on an empty data volume (POSTGRES_DB=mlflow is
-- created by the image itself). Optuna's studies get a database of their own.
CREATE DATABASE optuna;
