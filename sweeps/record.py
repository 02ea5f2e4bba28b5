"""Reading the study's MLflow record: the one paginated search every reader uses (``status``,
the report, the pair matrix, the dashboards). The record's names are listed in the README's
"What lands in MLflow"; ``sweeps.tracking.Tracker`` is the only writer."""

from __future__ import annotations

from typing import Any


def search_all(client: Any, experiment_id: str, query: str) -> list:
    """Every run of the experiment matching ``query``, page by page."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], query, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs
