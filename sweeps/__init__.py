"""sweeps: Optuna studies of multi-task models, described in a study.yaml, recorded in MLflow."""

__version__ = "0.1.0"
