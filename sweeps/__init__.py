"""sweeps: Optuna studies of multi-task models, described in a study.yaml, recorded in MLflow.

The Python API is ``sweeps.Study`` (see ``sweeps.api``); bad input raises ``sweeps.StudyError``.
"""

from typing import Any

from sweeps.errors import StudyError

__version__ = "0.1.0"
__all__ = ["Study", "StudyError"]


def __getattr__(name: str) -> Any:
    if name == "Study":
        # here, not at the top: loaded on first use, so that `sweeps --help` stays light
        from sweeps.api import Study

        return Study
    raise AttributeError(f"module 'sweeps' has no attribute {name!r}")
