"""dashboards: Plotly comparison pages built from what MLflow holds for a study."""

from dashboards.load import StudyRecord, load_study, load_trials
from dashboards.page import build_dashboard, render

__all__ = ["StudyRecord", "build_dashboard", "load_study", "load_trials", "render"]
